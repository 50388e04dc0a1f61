"""Registered files: upload, fetch from a URL, list, read, delete; and checks of one input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from snakedeck import envelope, fetch, filekinds, tables
from snakedeck.auth import Principal, Role
from snakedeck.documents import (
    FileDoc,
    public,
)
from snakedeck.run_inputs import check_inputs, is_file_id
from snakedeck.service.access import audited, require
from snakedeck.service.base import Doc, ServiceBase
from snakedeck.service.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooLarge,
    Unavailable,
    invalid,
    unavailable_on_backend_errors,
)
from snakedeck.service.runs import _check_tags, new_run_id
from snakedeck.store import (
    BlobInfo,
    BlobNotFound,
    BlobTooLarge,
    FileExists,
    FileFilter,
    StoreError,
)
from snakedeck.workflows import UnknownWorkflow


class Files(ServiceBase):
    """Registered files."""

    def check_file_name(self, name: object, where: str = "file") -> str:
        """The client's file name as display metadata, or 422 naming ``where``."""
        try:
            return filekinds.display_name(name)
        except filekinds.FileKindError as exc:
            raise invalid(where, str(exc)) from None

    def authorize_upload(self, by: Principal) -> None:
        """Refuse an upload before its bytes are read (the refusal is audited)."""
        try:
            require(by, Role.SUBMIT, "registering a file")
        except Forbidden as exc:
            self.audit(by, "file.upload", None, exc.status, exc.detail)
            raise

    @unavailable_on_backend_errors
    def put_content(self, chunks: Iterable[bytes], *, by: Principal) -> BlobInfo:
        """Store uploaded bytes (streamed, capped at ``SNAKEDECK_MAX_UPLOAD``: 413 beyond)."""
        require(by, Role.SUBMIT, "registering a file")
        try:
            return self.store.put_blob(chunks, max_bytes=self.settings.max_upload)
        except BlobTooLarge as exc:
            raise TooLarge(
                f"file: larger than the upload limit of {exc.limit} bytes (SNAKEDECK_MAX_UPLOAD)",
                [{"field": "file", "message": f"larger than {exc.limit} bytes"}],
            ) from None

    @unavailable_on_backend_errors
    def discard_content(self, blob: BlobInfo) -> None:
        """Drop content put for a registration that was then refused."""
        self.store.release_blob(blob.sha256)

    @audited("file.upload", created="file_id", status=201)
    @unavailable_on_backend_errors
    def register_file(
        self,
        blob: BlobInfo,
        *,
        by: Principal,
        name: str,
        kind: str | None = None,
        tags: Mapping[str, Any] | None = None,
        workflow: str | None = None,
        url: str | None = None,
        content_field: str = "file",
    ) -> FileDoc:
        """Register stored content as a file: check kind, format and (tables, configs) that
        it parses. A refusal releases the content again."""
        try:
            require(by, Role.SUBMIT, "registering a file")
            return self._register(blob, name, kind, tags, workflow, by.name, url, content_field)
        except BaseException:
            with contextlib.suppress(StoreError):
                self.store.release_blob(blob.sha256)
            raise

    def _register(
        self,
        blob: BlobInfo,
        name: str,
        kind: str | None,
        tags: Mapping[str, Any] | None,
        workflow: str | None,
        user: str | None,
        url: str | None,
        content_field: str,
    ) -> FileDoc:
        if kind is not None and kind not in filekinds.KINDS:
            raise invalid("kind", f"{kind!r} is not one of {', '.join(filekinds.KINDS)}")
        clean_tags = _check_tags(dict(tags or {}))
        if workflow is not None:
            try:
                self.registry.get(workflow)
            except UnknownWorkflow:
                raise invalid("workflow", f"no workflow named {workflow!r} is registered") from None
        with self.store.open_blob(blob.sha256) as f:
            head = f.read(filekinds.HEAD_BYTES)
        try:
            found_kind, fmt = filekinds.detect(name, head, kind)
        except filekinds.FileKindError as exc:
            raise invalid(content_field, f"{name!r} {exc}") from None
        doc: FileDoc = {
            "file_id": new_run_id(),
            "name": name,
            "kind": found_kind,
            "format": fmt,
            "size": blob.size,
            "sha256": blob.sha256,
            "created": envelope.now_iso(),
            "tags": clean_tags,
            "workflow": workflow,
            "user": user,
            "source": "url" if url else "upload",
            "url": url,
        }
        try:
            with self.store.open_blob(blob.sha256) as f:
                if found_kind == "table":
                    doc["table"] = tables.read_table(f, fmt).summary()
                elif found_kind == "config":
                    filekinds.read_config(f, fmt)
        except tables.TableError as exc:
            raise invalid(content_field, f"{name!r} is not a readable {fmt} table: {exc}") from None
        except filekinds.FileKindError as exc:
            raise invalid(content_field, f"{name!r} {exc}") from None
        for _attempt in range(3):
            try:
                self.store.create_file(doc)
                return doc
            except FileExists:  # an id collision within one millisecond
                doc["file_id"] = new_run_id()
        raise Unavailable("could not allocate a file id; try again")

    @unavailable_on_backend_errors
    def register_url(
        self,
        url: str,
        *,
        by: Principal,
        name: str | None = None,
        kind: str | None = None,
        tags: Mapping[str, Any] | None = None,
        workflow: str | None = None,
    ) -> FileDoc:
        """Fetch a URL (bounded; see :mod:`snakedeck.fetch`) and register what came back."""
        self.authorize_upload(by)
        shown_name = self.check_file_name(name, "name") if name is not None else None
        limits = fetch.FetchLimits(
            max_bytes=self.settings.max_upload,
            timeout=self.settings.fetch_timeout,
            connect_timeout=min(10.0, self.settings.fetch_timeout),
            allow_private=self.settings.fetch_allow_private,
        )
        try:
            with fetch.open_url(url, limits) as download:
                final_name = shown_name or filekinds.sanitized_name(download.name, "download")
                blob = self.store.put_blob(download.chunks(), max_bytes=limits.max_bytes)
        except fetch.FetchError as exc:
            if exc.too_large:
                raise TooLarge(
                    f"url: {exc.message}", [{"field": "url", "message": exc.message}]
                ) from None
            raise invalid("url", exc.message) from None
        except BlobTooLarge as exc:
            message = f"{fetch.shown_url(url)} is larger than the limit of {exc.limit} bytes"
            raise TooLarge(f"url: {message}", [{"field": "url", "message": message}]) from None
        return self.register_file(
            blob,
            by=by,
            name=final_name,
            kind=kind,
            tags=tags,
            workflow=workflow,
            url=fetch.shown_url(url),
            content_field="url",
        )

    @unavailable_on_backend_errors
    def list_files(
        self,
        *,
        kind: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        workflow: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> Doc:
        if kind is not None and kind not in filekinds.KINDS:
            raise invalid("kind", f"{kind!r} is not one of {', '.join(filekinds.KINDS)}")
        page = self.store.list_files(
            FileFilter(kind=kind, tag=tag, q=q, workflow=workflow),
            page_size=page_size,
            page_token=page_token,
        )
        return {
            "files": [public(f) for f in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }

    @unavailable_on_backend_errors
    def get_file(self, file_id: str) -> FileDoc:
        return public(self._file(file_id))

    @unavailable_on_backend_errors
    def open_file(self, file_id: str) -> tuple[FileDoc, BinaryIO]:
        """The file's document and its content, streamed (the caller closes it)."""
        doc = self._file(file_id)
        try:
            return public(doc), self.store.open_blob(doc["sha256"])
        except BlobNotFound:
            raise NotFound(f"the content of file {file_id} is missing from the store") from None

    @audited("file.delete", target="file_id", status=204)
    @unavailable_on_backend_errors
    def delete_file(self, file_id: str, *, by: Principal) -> None:
        """Unregister a file (its content goes once no other file has it); 409 while a
        queued or running run uses it. Admins only."""
        require(by, Role.ADMIN, "deleting a file")
        self._file(file_id)
        users = self.store.runs_using_file(file_id)
        if users:
            shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
            raise Conflict(f"file {file_id} is used by active run(s) {shown}; it stays")
        if self.store.delete_file(file_id) is None:
            raise NotFound(f"no file with id {file_id!r}")

    def _file(self, file_id: str) -> FileDoc:
        if not is_file_id(file_id):
            raise NotFound(f"{file_id[:80]!r} is not a file id")
        doc = self.store.get_file(file_id)
        if doc is None:
            raise NotFound(f"no file with id {file_id!r}")
        return doc

    @unavailable_on_backend_errors
    def check_input(self, workflow: str, name: str, file_id: str) -> list[dict[str, str]]:
        """The problems a submit would find with ``file_id`` as input ``name`` of
        ``workflow`` (kind, format, and for a sample sheet every row and column), each as
        ``{field, message}`` with the submit's field names (``inputs.<name>…``)."""
        try:
            wf = self.registry.get(workflow)
        except UnknownWorkflow:
            raise NotFound(f"no workflow named {workflow!r} is registered") from None
        if wf.input(name) is None:
            raise NotFound(f"workflow {workflow!r} has no input named {name!r}")
        where = f"inputs.{name}"
        checked = check_inputs(self.store, wf, {name: file_id})
        return [
            e for e in checked.errors if e["field"] == where or e["field"].startswith(where + ".")
        ]
