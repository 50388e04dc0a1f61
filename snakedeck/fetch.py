"""Fetching a file the server registers from a URL: http/https only, bounded in time, size and
redirects, and never towards the server's own network unless explicitly allowed.

Every host name is resolved and each address checked before connecting (loopback, private,
link-local, multicast, reserved and unspecified ranges are refused unless
``SNAKEDECK_FETCH_ALLOW_PRIVATE`` is set), and again for every redirect, which is followed by
hand. The body streams to the caller chunk by chunk (:meth:`Download.chunks`), so the blob
store's put enforces the same size cap as an upload; a ``Content-Length`` beyond it is refused
before reading. Every failure is a :class:`FetchError` saying what happened, never a stack.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

MAX_REDIRECTS: Final = 5
CHUNK: Final = 256 * 1024
USER_AGENT: Final = "snakedeck-fetch/1"


class FetchError(ValueError):
    """The URL cannot be fetched; ``too_large`` marks the size cap (413), else 422."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        self.message = message
        self.too_large = too_large
        super().__init__(message)


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout: float = 60.0
    """The whole fetch, redirects and body included."""
    connect_timeout: float = 10.0
    allow_private: bool = False
    max_redirects: int = MAX_REDIRECTS


def shown_url(url: str) -> str:
    """The URL without credentials, for messages and for the file's record."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def check_url(url: str, allow_private: bool) -> None:
    """Refuse what must not be fetched: other schemes, credentials-only oddities, hosts that
    resolve to a refused address range, and hosts that do not resolve."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"not a usable URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be fetched, not {parts.scheme or '(none)'}")
    host = parts.hostname
    if not host:
        raise FetchError("the URL names no host")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host {host!r} does not resolve ({exc})") from None
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise FetchError(
                f"the host {host!r} resolves to {address}, a private, loopback or reserved "
                "address; the server does not fetch from its own network"
            )


class Download:
    """An open response whose body is read with :meth:`chunks` (close it when done)."""

    def __init__(self, response: Any, url: str, limits: FetchLimits, deadline: float) -> None:
        self.response = response
        self.url = url
        self.limits = limits
        self.deadline = deadline

    @property
    def name(self) -> str:
        """The last path segment of the final URL (decoded), or ``""``."""
        path = urlsplit(self.url).path
        return unquote(path.rstrip("/").rsplit("/", 1)[-1]) if path else ""

    def chunks(self) -> Iterator[bytes]:
        import requests
        import urllib3.exceptions

        size = 0
        raw = self.response.raw
        try:
            while True:
                # read1: whatever one receive brings, so a server dripping bytes still meets
                # the deadline check below (read(n) would wait for all n).
                chunk = raw.read1(CHUNK)
                if not chunk:
                    return
                size += len(chunk)
                if size > self.limits.max_bytes:
                    raise FetchError(
                        f"{shown_url(self.url)} is larger than the limit of "
                        f"{self.limits.max_bytes} bytes",
                        too_large=True,
                    )
                if time.monotonic() > self.deadline:
                    raise FetchError(
                        f"fetching {shown_url(self.url)} timed out after {self.limits.timeout:g} s"
                    )
                yield chunk
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise FetchError(
                f"fetching {shown_url(self.url)} timed out after {self.limits.timeout:g} s"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchError(f"the connection to {shown_url(self.url)} broke: {exc}") from None
        except requests.RequestException as exc:
            raise FetchError(f"fetching {shown_url(self.url)} failed: {exc}") from None

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_url(url: str, limits: FetchLimits) -> Download:
    """Connect, follow redirects (each checked) and return the response ready to stream."""
    import requests

    deadline = time.monotonic() + limits.timeout
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the server's environment
    current = url
    for _hop in range(limits.max_redirects + 1):
        check_url(current, limits.allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"fetching {shown_url(url)} timed out after {limits.timeout:g} s")
        try:
            response = session.get(
                current,
                stream=True,
                allow_redirects=False,
                timeout=(min(limits.connect_timeout, remaining), remaining),
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
        except requests.exceptions.Timeout:
            raise FetchError(
                f"fetching {shown_url(current)} timed out after {limits.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise FetchError(f"cannot fetch {shown_url(current)}: {exc}") from None
        if response.is_redirect:
            location = response.headers.get("Location", "")
            response.close()
            if not location:
                raise FetchError(f"{shown_url(current)} redirects without a Location")
            current = urljoin(current, location)
            continue
        if response.status_code >= 400:
            response.close()
            reason = f"{response.status_code} {response.reason or ''}".strip()
            raise FetchError(f"{shown_url(current)} answered {reason}")
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > limits.max_bytes:
            response.close()
            raise FetchError(
                f"{shown_url(current)} is {int(length)} bytes, larger than the limit of "
                f"{limits.max_bytes} bytes",
                too_large=True,
            )
        return Download(response, current, limits, deadline)
    raise FetchError(f"{shown_url(url)} redirects more than {limits.max_redirects} times")
