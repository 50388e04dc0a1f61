"""Named API tokens: each a name, a role and the sha256 of the token, never the token itself.

Tokens are long random strings made by snakedeck (:func:`snakedeck.auth.new_token`, 256 bits),
so a plain sha256 is enough to keep them: a slow password hash (bcrypt, argon2) exists to make
guessing *low-entropy* secrets from a stolen hash expensive, and no amount of guessing finds a
256-bit random value. A fast hash also lets every request be checked without a costly KDF.

A name is unique among the unrevoked tokens; a revoked token stays listed (with ``revoked_at``)
so the audit trail's names keep meaning something, and its name may be used again.
"""

from __future__ import annotations

import abc
import re
from typing import Final

from snakedeck.documents import TokenDoc
from snakedeck.store.errors import TokenExists

TOKEN_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""What a token's name may look like (it is shown in runs, listings and the audit trail)."""


class TokenStore(abc.ABC):
    """The token registry's storage; lookups go by the sha256 hex of the presented token."""

    def create_token(self, doc: TokenDoc) -> None:
        """Keep a new token (``name``, ``role``, ``sha256``, ``created`` required). Raises
        :class:`~snakedeck.store.errors.TokenExists` when an unrevoked token has the name."""
        if any(t["name"] == doc["name"] for t in self.list_tokens()):
            raise TokenExists(f"a token named {doc['name']!r} exists; revoke it first")
        self._insert_token({"revoked_at": None, "last_used_at": None, **doc})

    @abc.abstractmethod
    def token_by_hash(self, sha256: str) -> TokenDoc | None:
        """The token with this hash, revoked or not (``None``: no such token)."""

    @abc.abstractmethod
    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenDoc]:
        """By name, then creation time."""

    @abc.abstractmethod
    def revoke_token(self, name: str, at: str) -> TokenDoc | None:
        """Revoke the unrevoked token of this name; the revoked document, or ``None``."""

    @abc.abstractmethod
    def touch_token(self, sha256: str, at: str) -> None:
        """Record that the token was used (callers do this at most once a minute)."""

    @abc.abstractmethod
    def has_tokens(self) -> bool:
        """Whether any token was ever made here, revoked ones included: then the server
        requires tokens (revoking the last one must not open the server to everyone)."""

    @abc.abstractmethod
    def _insert_token(self, doc: TokenDoc) -> None:
        """Insert; raise :class:`TokenExists` on a duplicate hash."""
