"""The store's errors, shared by every backend and every part of the store."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store is unreachable or refused an operation."""


class RunExists(StoreError):
    pass


class ConcurrentUpdate(StoreError):
    """A document changed between read and write; the caller retries."""


class BlobTooLarge(ValueError):
    """Content went past the byte cap the caller set; nothing was stored.

    Not a :class:`StoreError`: the store is fine, the content is the problem."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the content is larger than the limit of {limit} bytes")


class BlobNotFound(LookupError):
    """No blob with this sha256 is stored."""

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        super().__init__(f"no blob {sha256}")


class FileExists(StoreError):
    pass


class TokenExists(StoreError):
    """An unrevoked token already has this name (or, vanishingly unlikely, this hash)."""
