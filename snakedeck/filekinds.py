"""What a registered file is: its kind and format, told from its name and first bytes, and the
rules for the client's file name, which is display metadata and never a path.

Kinds: ``fasta``, ``fastq``, ``table`` (sample sheets, info tables), ``config`` (YAML/JSON run
configuration), ``text`` and ``other``. A kind given by the client is checked against the
content (a ``table`` must also parse, a ``config`` must be a mapping: see the service); one not
given is detected.
"""

from __future__ import annotations

import json
import unicodedata
import zlib
from typing import IO, Any, Final

from snakedeck import tables

KINDS: Final = ("fasta", "fastq", "table", "config", "text", "other")
HEAD_BYTES: Final = 64 * 1024
"""How much of the content detection looks at."""
MAX_NAME: Final = 255
MAX_CONFIG_BYTES: Final = 1024 * 1024
GZIP_MAGIC: Final = b"\x1f\x8b"

_FASTA_EXT: Final = (".fa", ".fasta", ".fna", ".faa", ".ffn", ".fas", ".frn")
_FASTQ_EXT: Final = (".fq", ".fastq")
_CONFIG_EXT: Final = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_TEXT_EXT: Final = (".txt", ".text", ".log", ".md")


class FileKindError(ValueError):
    """The content is not what its kind says, or a name is not usable."""


def display_name(name: object) -> str:
    """The client's file name if it is a plain name; else :class:`FileKindError` saying why.

    Refused: empty, ``.``/``..``, anything with a directory part (``/``, ``\\``), a drive, NUL
    or other control characters, more than 255 bytes."""
    if not isinstance(name, str):
        raise FileKindError("a file name must be a string")
    text = unicodedata.normalize("NFC", name).strip()
    if not text:
        raise FileKindError("the file name is empty")
    if text in (".", ".."):
        raise FileKindError(f"{text!r} is not a file name")
    if "/" in text or "\\" in text:
        raise FileKindError(
            f"the file name {text!r} has a directory part; send the plain file name"
        )
    if len(text) >= 2 and text[1] == ":" and text[0].isalpha():
        raise FileKindError(f"the file name {text!r} names a drive; send the plain file name")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise FileKindError("the file name holds control characters")
    if len(text.encode("utf-8")) > MAX_NAME:
        raise FileKindError(f"the file name is longer than {MAX_NAME} bytes")
    return text


def sanitized_name(name: str, fallback: str) -> str:
    """A usable file name made from anything (a URL's last segment, a stored name): every
    character that could make it a path is replaced; ``fallback`` when nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = "".join(
        "_" if c in "/\\:" or unicodedata.category(c).startswith("C") else c for c in text
    )
    text = text.strip().lstrip(".").strip()
    while len(text.encode("utf-8")) > MAX_NAME:
        text = text[:-1]
    return text or fallback


def _gunzipped_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
    except zlib.error:
        return b""


def _first_byte(head: bytes) -> bytes:
    stripped = head.lstrip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:].lstrip()
    return stripped[:1]


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a character cut at the end of the head


def _ext_kind(lower: str) -> tuple[str, str] | None:
    gz = lower.endswith(".gz")
    base = lower[:-3] if gz else lower
    suffix = ".gz" if gz else ""
    if base.endswith(_FASTA_EXT):
        return "fasta", "fasta" + suffix
    if base.endswith(_FASTQ_EXT):
        return "fastq", "fastq" + suffix
    if gz:
        return None
    for ext, fmt in tables.EXTENSIONS.items():
        if lower.endswith(ext):
            return "table", fmt
    for ext, fmt in _CONFIG_EXT.items():
        if lower.endswith(ext):
            return "config", fmt
    if lower.endswith(_TEXT_EXT):
        return "text", "txt"
    return None


def detect(name: str, head: bytes, kind: str | None = None) -> tuple[str, str]:
    """``(kind, format)`` of a file from its name and first bytes; with ``kind`` given, that
    kind if the content fits it, else :class:`FileKindError` saying why not."""
    if kind is not None and kind not in KINDS:
        raise FileKindError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    lower = name.lower()
    by_ext = _ext_kind(lower)
    gz = head.startswith(GZIP_MAGIC)
    body = _gunzipped_head(head) if gz else head
    suffix = ".gz" if gz else ""
    first = _first_byte(body)

    def sequence(wanted: str, marker: bytes) -> tuple[str, str]:
        if first != marker:
            shown = "empty" if not body.strip() else f"starts with {first!r}"
            raise FileKindError(
                f"is not {wanted.upper()}: a {wanted} file starts with {marker.decode()!r}, "
                f"this one {shown}"
            )
        return wanted, wanted + suffix

    if kind == "fasta" or (kind is None and (by_ext or ("",))[0] == "fasta"):
        return sequence("fasta", b">")
    if kind == "fastq" or (kind is None and (by_ext or ("",))[0] == "fastq"):
        return sequence("fastq", b"@")
    if kind == "table" or (kind is None and (by_ext or ("",))[0] == "table"):
        fmt = tables.detect_format(name, head)
        if fmt is None:
            raise FileKindError(
                "is not a table: use CSV, TSV or XLSX (named .csv, .tsv or .xlsx) with a header"
            )
        return "table", fmt
    if kind == "config" or (kind is None and (by_ext or ("",))[0] == "config"):
        if by_ext is not None and by_ext[0] == "config":
            return "config", by_ext[1]
        return "config", "json" if first == b"{" else "yaml"
    if kind == "text" or (kind is None and (by_ext or ("",))[0] == "text"):
        if not _is_text(head):
            raise FileKindError("is not text: it is not UTF-8 (or holds NUL bytes)")
        return "text", "txt"
    if kind == "other":
        return "other", _other_format(lower)
    # nothing from the name: the content decides
    if first == b">" and _is_text(body):
        return "fasta", "fasta" + suffix
    if first == b"@" and _is_text(body):
        return "fastq", "fastq" + suffix
    if head.startswith(tables.XLSX_MAGIC) and lower.endswith(".xlsx"):
        return "table", "xlsx"
    if not gz and _is_text(head):
        return "text", "txt"
    return "other", _other_format(lower)


def _other_format(lower: str) -> str:
    _, dot, ext = lower.rpartition(".")
    return ext if dot and ext and len(ext) <= 16 and ext.isalnum() else "bin"


def read_config(source: IO[bytes], fmt: str) -> dict[str, Any]:
    """A config file's mapping (YAML or JSON); :class:`FileKindError` if it is not one."""
    import yaml

    raw = source.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise FileKindError(f"a config file may be at most {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileKindError("is not a config file: not UTF-8 text") from None
    try:
        value = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        what = "JSON" if fmt == "json" else "YAML"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileKindError(f"is not valid {what}: {first}") from None
    if value is None:
        value = {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise FileKindError("a config file must hold a mapping of config keys")
    return value
