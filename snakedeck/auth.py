"""Who is asking, and what they may do: tokens, roles and principals, without any web framework.

The gateway (HTTP headers, socket handshakes) and the dashboard (a token kept in the browser)
both turn what a client presents into a :class:`Principal` here, and ask it for a :class:`Role`.
With no token configured anywhere, every caller is the local administrator: the default server
binds 127.0.0.1, so only this machine's users reach it.

Tokens come from three places, checked in this order: ``SNAKEDECK_API_TOKENS`` (admin tokens,
named ``admin-token-N``), the token file (``SNAKEDECK_TOKEN_FILE``) and the store's token
registry (``snakedeck tokens create``). The last two keep only the sha256 of each token
(:mod:`snakedeck.store.tokens` says why that is enough) and are read through
:class:`TokenRegistry`, which caches what it found for :data:`CACHE_SECONDS`: a revoked token
stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from snakedeck.store.tokens import TokenStore

log = logging.getLogger(__name__)

CACHE_SECONDS: Final = 5.0
"""How long a token lookup (found or not) is trusted before the store is asked again."""
TOUCH_SECONDS: Final = 60.0
"""A token's ``last_used_at`` is written at most this often."""
TOKEN_PREFIX: Final = "sdk_"
LABEL: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}$")


class Role(IntEnum):
    """Ordered: a role may do everything the ones below it may."""

    READ = 1
    """Everything a viewer sees: runs, jobs, logs, results, live feeds."""
    SUBMIT = 2
    """Plus submitting, cancelling, rerunning and resuming one's own runs, and uploads."""
    ADMIN = 3
    """Everything: other people's runs, deletes, dead letters, tokens, the audit trail."""

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown role {name!r}: use one of {', '.join(r.name.lower() for r in cls)}"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """The caller as far as snakedeck knows it: a token's name and role, and (for the audit
    trail) where the request came from."""

    name: str
    role: Role
    source: str | None = field(default=None, compare=False)
    """The client's address, when a transport knows it."""

    def may(self, role: Role) -> bool:
        return self.role >= role

    def at(self, source: str | None) -> Principal:
        """The same principal, calling from ``source``."""
        return replace(self, source=source)


LOCAL_ADMIN = Principal("local", Role.ADMIN)
"""Who every caller is when no token is configured."""
ANONYMOUS = Principal("anonymous", Role.READ)
"""A caller without a token on a server whose reads are public (``SNAKEDECK_PUBLIC_READ``)."""


def local_principal(label: str | None) -> Principal:
    """The local administrator, named by the display label a client sent (``X-Snakedeck-User``,
    the dashboard's name field) when it is a plausible name. Only used when no token is
    configured: then everyone is an administrator and the name is only a label."""
    text = (label or "").strip()
    return Principal(text, Role.ADMIN) if LABEL.match(text) else LOCAL_ADMIN


class AuthError(Exception):
    """A presented token is missing or not valid (the text says which)."""


class AuthUnavailable(Exception):
    """The token registry cannot be read (the store is down): nothing can be decided."""


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe, with a prefix that makes it recognisable."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the registry keeps of a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Authenticator:
    """Checks presented tokens against the configured ones, in constant time.

    ``admin_tokens`` are the ``SNAKEDECK_API_TOKENS`` entries. Named tokens with other roles come
    from ``lookup`` (the token registry), which returns the principal for a token or ``None``.
    """

    def __init__(
        self,
        admin_tokens: Iterable[str] = (),
        *,
        lookup: TokenLookup | None = None,
        public_read: bool = False,
    ) -> None:
        self.admin_tokens = tuple(t for t in admin_tokens if t)
        self.lookup = lookup
        self.public_read = public_read

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (then callers must present one)."""
        return bool(self.admin_tokens) or (self.lookup is not None and self.lookup.any())

    def authenticate(self, token: str | None, *, label: str | None = None) -> Principal:
        """The principal a token stands for; raises :class:`AuthError` when it stands for none.
        With no token configured, the local administrator (named by ``label``, if any)."""
        if not self.enabled:
            return local_principal(label)
        if not token:
            raise AuthError(
                "this server requires an API token: send 'Authorization: Bearer <token>'"
            )
        presented = token.encode()
        # Compare against every admin token (no early exit) so timing reveals nothing.
        matches = [hmac.compare_digest(presented, t.encode()) for t in self.admin_tokens]
        if any(matches):
            return Principal(f"admin-token-{matches.index(True) + 1}", Role.ADMIN)
        if self.lookup is not None:
            found = self.lookup.find(token)
            if found is not None:
                return found
        raise AuthError("the API token is not valid")

    def reader(self, token: str | None, *, label: str | None = None) -> Principal:
        """Who a caller is for a read: like :meth:`authenticate`, except that on a server with
        public reads a caller without a token reads as :data:`ANONYMOUS`."""
        if not token and self.public_read and self.enabled:
            return ANONYMOUS
        return self.authenticate(token, label=label)

    def accepts(self, token: str | None, role: Role = Role.READ) -> bool:
        try:
            return self.reader(token).may(role)
        except (AuthError, AuthUnavailable):
            return False


class TokenLookup(Protocol):
    """Where named tokens live (the store's token registry implements this)."""

    def any(self) -> bool:
        """Whether any named token exists (then tokens are required)."""
        ...

    def find(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token."""
        ...


# -- the token registry -------------------------------------------------------------------------
@dataclass(frozen=True)
class FileToken:
    name: str
    role: Role
    sha256: str


def parse_token_file(text: str, where: str = "token file") -> list[FileToken]:
    """Lines ``name:role:sha256hex``; blank lines and ``#`` comments are skipped. The file
    holds hashes only (``snakedeck tokens create --file`` writes them), never tokens."""
    entries: list[FileToken] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(":")]
        if len(parts) != 3:
            raise ValueError(f"{where}, line {number}: expected name:role:sha256hex")
        name, role, digest = parts
        if not LABEL.match(name) or " " in name:
            raise ValueError(f"{where}, line {number}: {name!r} is not a token name")
        if not re.fullmatch(r"[0-9a-f]{64}", digest.lower()):
            raise ValueError(f"{where}, line {number}: the hash must be 64 hex digits (sha256)")
        try:
            parsed = Role.parse(role)
        except ValueError as exc:
            raise ValueError(f"{where}, line {number}: {exc}") from None
        entries.append(FileToken(name, parsed, digest.lower()))
    return entries


class TokenRegistry:
    """Named tokens from a token file and the store, as a :class:`TokenLookup` for
    :class:`Authenticator`.

    A presented token is hashed once; the file's entries are compared with
    :func:`hmac.compare_digest` against every entry (no early exit), the store is asked by
    hash (an index lookup on a hash reveals nothing about any stored token). Results, found
    or not, are cached for ``cache_seconds``; the file is read again when it changes.
    """

    def __init__(
        self,
        store: TokenStore | None = None,
        token_file: Path | None = None,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.token_file = token_file
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[str, tuple[float, Principal | None]] = {}
        self._any: tuple[float, bool] | None = None
        self._touched: dict[str, float] = {}
        self._file: tuple[float, list[FileToken]] = (-1.0, [])
        if token_file is not None:
            self._file_tokens()  # a broken file is an error at start, not at the first request

    def _file_tokens(self) -> list[FileToken]:
        if self.token_file is None:
            return []
        try:
            mtime = self.token_file.stat().st_mtime
        except OSError as exc:
            raise ValueError(f"cannot read the token file {self.token_file}: {exc}") from None
        if mtime != self._file[0]:
            text = self.token_file.read_text(encoding="utf-8")
            self._file = (mtime, parse_token_file(text, str(self.token_file)))
        return self._file[1]

    def forget(self) -> None:
        """Drop every cached answer (after a change made in this process)."""
        with self._lock:
            self._found.clear()
            self._any = None

    def any(self) -> bool:
        now = self._clock()
        with self._lock:
            if self._any is not None and now < self._any[0]:
                return self._any[1]
        try:
            found = bool(self._file_tokens()) or (
                self.store is not None and self.store.has_tokens()
            )
        except Exception as exc:  # noqa: BLE001 - fail closed: tokens stay required
            log.warning("token registry not readable, tokens stay required: %s", exc)
            found = True
        with self._lock:
            self._any = (now + self.cache_seconds, found)
        return found

    def find(self, token: str) -> Principal | None:
        digest = token_hash(token)
        now = self._clock()
        with self._lock:
            cached = self._found.get(digest)
            if cached is not None and now < cached[0]:
                return cached[1]
        principal = self._lookup(digest, now)
        with self._lock:
            if len(self._found) > 4096:
                self._found.clear()
            self._found[digest] = (now + self.cache_seconds, principal)
        return principal

    def _lookup(self, digest: str, now: float) -> Principal | None:
        try:
            entries = self._file_tokens()
        except ValueError as exc:
            raise AuthUnavailable(str(exc)) from None
        matches = [hmac.compare_digest(digest, e.sha256) for e in entries]
        if any(matches):
            entry = entries[matches.index(True)]
            return Principal(entry.name, entry.role)
        if self.store is None:
            return None
        from snakedeck.store.errors import StoreError

        try:
            doc = self.store.token_by_hash(digest)
        except StoreError as exc:
            raise AuthUnavailable(f"the token registry is unavailable: {exc}") from None
        if doc is None or doc.get("revoked_at"):
            return None
        try:
            role = Role.parse(str(doc.get("role")))
        except ValueError:
            log.warning(
                "token %r has an unknown role %r; refused", doc.get("name"), doc.get("role")
            )
            return None
        self._touch(digest, now)
        return Principal(str(doc["name"]), role)

    def _touch(self, digest: str, now: float) -> None:
        if now - self._touched.get(digest, -TOUCH_SECONDS) < TOUCH_SECONDS:
            return
        self._touched[digest] = now
        from snakedeck.envelope import now_iso

        try:
            self.store.touch_token(digest, now_iso())  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - bookkeeping only
            log.warning("could not record a token's last use: %s", exc)


# -- token changes (the CLI's `snakedeck tokens`) -----------------------------------------------
if TYPE_CHECKING:
    from snakedeck.documents import TokenDoc
    from snakedeck.store.base import Store


class TokenChangeError(ValueError):
    """A token change that cannot be made (the text says why)."""


def create_token(store: Store, name: str, role: Role, *, by: Principal) -> tuple[str, TokenDoc]:
    """Make a token, keep its hash in the store, audit it; the token is returned once and
    never kept anywhere."""
    from snakedeck.envelope import now_iso
    from snakedeck.store.errors import TokenExists
    from snakedeck.store.tokens import TOKEN_NAME

    if not TOKEN_NAME.match(name):
        raise TokenChangeError(
            f"{name!r} is not a token name: 1-64 letters, digits, '.', '_' or '-'"
        )
    token = new_token()
    doc: TokenDoc = {
        "name": name,
        "role": role.label,
        "sha256": token_hash(token),
        "created": now_iso(),
        "created_by": by.name,
    }
    try:
        store.create_token(doc)
    except TokenExists as exc:
        _audit_token(store, "token.create", name, by, 409, str(exc))
        raise TokenChangeError(str(exc)) from None
    _audit_token(store, "token.create", name, by, 201, f"role {role.label}")
    return token, doc


def revoke_token(store: Store, name: str, *, by: Principal) -> TokenDoc:
    from snakedeck.envelope import now_iso

    doc = store.revoke_token(name, now_iso())
    if doc is None:
        _audit_token(store, "token.revoke", name, by, 404, "no unrevoked token has this name")
        raise TokenChangeError(f"no unrevoked token is named {name!r}")
    _audit_token(store, "token.revoke", name, by, 200, None)
    return doc


def _audit_token(
    store: Store, action: str, name: str, by: Principal, status: int, detail: str | None
) -> None:
    store.record_audit(
        {
            "actor": by.name,
            "role": by.role.label,
            "action": action,
            "target": name,
            "source": by.source,
            "result": "ok" if status < 400 else "refused",
            "status": status,
            "detail": detail,
        }
    )
