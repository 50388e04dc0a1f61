"""Content-addressed blobs in a GridFS bucket (``blobs.files`` / ``blobs.chunks``), ``_id`` =
sha256, so identical content is stored once.

GridFS needs the id before the first chunk is written, so a put spools its input to a local
temporary file first, learning the sha256 and enforcing the byte cap without holding the
content in memory; content already stored is then not sent again. Two puts of the same new
content at the same instant can collide on the id; the loser's error is a
:class:`~snakedeck.store.errors.StoreError` and the winner's blob stays.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO, Final

from snakedeck.store.blobs import BlobInfo, BlobStore, Readable, copy_capped, is_sha256
from snakedeck.store.errors import BlobNotFound
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors

BUCKET: Final = "blobs"
CHUNK_BYTES: Final = 255 * 1024
SPOOL_IN_MEMORY: Final = 1024 * 1024
"""Content up to this size is spooled in memory, larger content in a temporary file."""


class MongoBlobs(MongoConnection, BlobStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._bucket_obj: Any = None

    @property
    def _bucket(self) -> Any:
        if self._bucket_obj is None:
            from gridfs import GridFSBucket

            self._bucket_obj = GridFSBucket(
                self._db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES
            )
        return self._bucket_obj

    @mongo_errors
    def put_blob(
        self, source: Readable | Iterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            info = copy_capped(source, spool, max_bytes)  # type: ignore[arg-type]
            if self._db[f"{BUCKET}.files"].find_one({"_id": info.sha256}, {"_id": 1}) is None:
                spool.seek(0)
                self._bucket.upload_from_stream_with_id(
                    info.sha256, info.sha256, spool, metadata={"size": info.size}
                )
        return info

    @mongo_errors
    def open_blob(self, sha256: str) -> BinaryIO:
        from gridfs.errors import NoFile

        if not is_sha256(sha256):
            raise BlobNotFound(str(sha256))
        try:
            return self._bucket.open_download_stream(sha256)
        except NoFile:
            raise BlobNotFound(sha256) from None

    @mongo_errors
    def blob_exists(self, sha256: str) -> bool:
        return self.blob_size(sha256) is not None

    @mongo_errors
    def blob_size(self, sha256: str) -> int | None:
        if not is_sha256(sha256):
            return None
        doc = self._db[f"{BUCKET}.files"].find_one({"_id": sha256}, {"length": 1})
        return None if doc is None else int(doc["length"])

    @mongo_errors
    def delete_blob(self, sha256: str) -> bool:
        from gridfs.errors import NoFile

        if not is_sha256(sha256):
            return False
        try:
            self._bucket.delete(sha256)
            return True
        except NoFile:
            return False
