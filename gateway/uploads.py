"""A ``multipart/form-data`` upload read as a stream: the file part's bytes go straight to the
blob store chunk by chunk, never whole into memory or a per-part temporary file (which is what
``request.files`` would do). Small text fields (``kind``, ``tags``, ``workflow``) are kept,
bounded, whether they come before or after the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Final

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from snakedeck.service import Invalid, ServiceError

READ_BYTES: Final = 64 * 1024
MAX_FIELD_BYTES: Final = 64 * 1024
MAX_PARTS: Final = 64
DECODER_BUFFER: Final = READ_BYTES + MAX_FIELD_BYTES
"""What the decoder may hold at once: one read plus what it keeps back (a possible partial
boundary, part headers). Field values are bounded separately (:data:`MAX_FIELD_BYTES`)."""


class MalformedUpload(ServiceError):
    status, title, slug = 400, "Malformed upload", "malformed-upload"


class MultipartUpload:
    """Walk the parts of one request body: :meth:`next_file` stops at the file part,
    :meth:`chunks` yields its bytes, :meth:`finish` reads the fields after it."""

    def __init__(self, stream: IO[bytes], boundary: str) -> None:
        self._stream = stream
        self._decoder = MultipartDecoder(
            boundary.encode("latin-1"), max_form_memory_size=DECODER_BUFFER, max_parts=MAX_PARTS
        )
        self.fields: dict[str, list[str]] = {}
        self._done = False

    def _events(self) -> Iterator[object]:
        """Decoder events, feeding it from the stream as it needs data."""
        try:
            while True:
                event = self._decoder.next_event()
                if isinstance(event, NeedData):
                    chunk = self._stream.read(READ_BYTES)
                    self._decoder.receive_data(chunk or None)
                    continue
                yield event
                if isinstance(event, Epilogue):
                    self._done = True
                    return
        except RequestEntityTooLarge:
            raise MalformedUpload(
                f"the part headers are larger than {MAX_FIELD_BYTES} bytes, or the form has "
                f"more than {MAX_PARTS} parts"
            ) from None
        except ValueError as exc:
            raise MalformedUpload(f"the multipart body is malformed: {exc}") from None

    def _field(self, name: str, events: Iterator[object]) -> None:
        value = bytearray()
        for event in events:
            if not isinstance(event, Data):
                raise MalformedUpload("the multipart body is malformed")
            value += event.data
            if len(value) > MAX_FIELD_BYTES:
                raise MalformedUpload(f"form field {name!r} is larger than {MAX_FIELD_BYTES} bytes")
            if not event.more_data:
                break
        try:
            self.fields.setdefault(name, []).append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise Invalid(
                f"form field {name!r} is not UTF-8 text",
                [{"field": name, "message": "not UTF-8 text"}],
            ) from None

    def next_file(self, part: str = "file") -> str | None:
        """Read fields up to the file part named ``part``; its client file name (``None``: the
        form has no such part). Another file part is refused."""
        self._iter = self._events()
        for event in self._iter:
            if isinstance(event, File):
                if event.name != part:
                    raise Invalid(
                        f"unexpected file part {event.name!r}; send the file as part {part!r}",
                        [{"field": event.name or "(unnamed)", "message": "unexpected file part"}],
                    )
                return event.filename
            if isinstance(event, Field):
                self._field(event.name, self._iter)
        return None

    def chunks(self) -> Iterator[bytes]:
        """The file part's bytes."""
        for event in self._iter:
            if not isinstance(event, Data):
                raise MalformedUpload("the multipart body is malformed")
            if event.data:
                yield bytes(event.data)
            if not event.more_data:
                return

    def finish(self) -> None:
        """Read the fields after the file; a second file part is refused."""
        if self._done:
            return
        for event in self._iter:
            if isinstance(event, File):
                raise Invalid(
                    "send one file per upload",
                    [{"field": event.name or "file", "message": "a second file part"}],
                )
            if isinstance(event, Field):
                self._field(event.name, self._iter)
