"""The streamed multipart reader: the file part arrives whole and in order whatever its bytes,
with the fields before and after it, and malformed or oversized forms are named."""

from __future__ import annotations

import io

import pytest

from gateway.uploads import MAX_FIELD_BYTES, MalformedUpload, MultipartUpload
from snakedeck.service import Invalid

B = "snakedeck-test-boundary"


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{B}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{B}--\r\n".encode()


@pytest.mark.parametrize(
    "data",
    [
        b"ACGTACGTA\n" * 100_000,  # a line break near the end of every read
        b"\r\n--" * 50_000,  # looks like a boundary everywhere, never is one
        bytes(range(256)) * 5000,
        b"",
    ],
    ids=["lines", "almost-boundaries", "binary", "empty"],
)
def test_the_file_part_streams_whole(data: bytes) -> None:
    body = form(("kind", None, b"fasta"), ("file", "r.fa", data), ("tags", None, b"a=b"))
    upload = MultipartUpload(io.BytesIO(body), B)
    assert upload.next_file() == "r.fa"
    chunks = list(upload.chunks())
    upload.finish()
    assert b"".join(chunks) == data
    assert all(len(c) <= 256 * 1024 for c in chunks)
    assert upload.fields == {"kind": ["fasta"], "tags": ["a=b"]}


def test_no_file_part_and_unexpected_parts() -> None:
    assert MultipartUpload(io.BytesIO(form(("kind", None, b"x"))), B).next_file() is None
    with pytest.raises(Invalid):
        MultipartUpload(io.BytesIO(form(("other", "x", b"1"))), B).next_file()
    two = MultipartUpload(io.BytesIO(form(("file", "a", b"1"), ("file", "b", b"2"))), B)
    assert two.next_file() == "a"
    list(two.chunks())
    with pytest.raises(Invalid, match="one file"):
        two.finish()


def test_oversized_fields_and_garbage_are_malformed() -> None:
    big = form(("kind", None, b"x" * (MAX_FIELD_BYTES + 1)), ("file", "a", b"1"))
    with pytest.raises(MalformedUpload):
        MultipartUpload(io.BytesIO(big), B).next_file()
    truncated = form(("file", "a", b"123"))[:-20]
    upload = MultipartUpload(io.BytesIO(truncated), B)
    assert upload.next_file() == "a"
    with pytest.raises(MalformedUpload):
        list(upload.chunks())
