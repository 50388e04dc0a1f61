"""Content-addressed blobs beside the SQLite file: ``DATA_DIR/blobs/<sha[:2]>/<sha>``.

A put streams into a temporary file in the same directory tree (hashing and counting as it
goes), then renames it into place, so a reader never sees half a blob and two puts of the same
content leave one file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from snakedeck.store.blobs import BlobInfo, BlobStore, Readable, copy_capped, is_sha256
from snakedeck.store.errors import BlobNotFound, StoreError
from snakedeck.store.sqlite.connection import SqliteConnection


class SqliteBlobs(SqliteConnection, BlobStore):
    @property
    def blobs_dir(self) -> Path:
        return self.path.parent / "blobs"

    def _blob_path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise BlobNotFound(str(sha256))
        return self.blobs_dir / sha256[:2] / sha256

    def put_blob(
        self, source: Readable | Iterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        tmp_dir = self.blobs_dir / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        except OSError as exc:
            raise StoreError(f"cannot write blobs under {self.blobs_dir}: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                info = copy_capped(source, sink, max_bytes)
                sink.flush()
                os.fsync(sink.fileno())
            final = self._blob_path(info.sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                tmp.unlink()
            else:
                os.replace(tmp, final)
            return info
        except OSError as exc:
            raise StoreError(f"cannot write blobs under {self.blobs_dir}: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def open_blob(self, sha256: str) -> BinaryIO:
        try:
            return self._blob_path(sha256).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def blob_exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self._blob_path(sha256).is_file()

    def blob_size(self, sha256: str) -> int | None:
        if not is_sha256(sha256):
            return None
        try:
            return self._blob_path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def delete_blob(self, sha256: str) -> bool:
        if not is_sha256(sha256):
            return False
        try:
            self._blob_path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False

    def drop(self) -> None:
        super().drop()
        shutil.rmtree(self.blobs_dir, ignore_errors=True)
