"""What the Results tab shows of a stored result: the first rows of a table, the start of a
text, read from a bounded prefix of its content (a result may be gigabytes)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from snakedeck.tables import TableError, detect_format, read_table

READ_BYTES: Final = 256 * 1024
"""What a preview reads of a result at most."""
TABLE_ROWS: Final = 100
TEXT_CHARS: Final = 64 * 1024


@dataclass(frozen=True)
class Preview:
    """A table (``columns`` and ``rows``) or a text; ``partial`` when the result goes on."""

    kind: str
    """``table`` or ``text``."""
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    partial: bool = False
    note: str = ""


def head(stream: BinaryIO, limit: int = READ_BYTES) -> tuple[bytes, bool]:
    """The first ``limit`` bytes and whether there is more."""
    data = stream.read(limit + 1)
    return data[:limit], len(data) > limit


def as_text(data: bytes, more: bool, limit: int = TEXT_CHARS) -> Preview:
    text = data.decode("utf-8", errors="replace")
    partial = more or len(text) > limit
    return Preview(kind="text", text=text[:limit], partial=partial)


def as_table(name: str, data: bytes, more: bool, rows: int = TABLE_ROWS) -> Preview:
    """The first ``rows`` rows of a CSV or TSV (the header names the columns); a file that is
    no such table is shown as text, saying why."""
    fmt = detect_format(name, data[:4096])
    if fmt not in ("csv", "tsv"):
        return _text_instead(data, more, "not a CSV or TSV table")
    if more:  # cut at the last whole line
        data = data[: data.rfind(b"\n") + 1] if b"\n" in data else data
    try:
        table = read_table(io.BytesIO(data), fmt)
    except TableError as exc:
        return _text_instead(data, more, str(exc))
    return Preview(
        kind="table",
        columns=table.columns,
        rows=[{str(k): v for k, v in r.items()} for r in table.rows[:rows]],
        partial=more or len(table.rows) > rows,
        note=f"{len(table.rows)} rows" if not more else f"first {min(rows, len(table.rows))} rows",
    )


def _text_instead(data: bytes, more: bool, why: str) -> Preview:
    preview = as_text(data, more)
    return Preview(
        kind="text", text=preview.text, partial=preview.partial, note=f"shown as text: {why}"
    )
