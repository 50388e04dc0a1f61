"""Sample sheets and info tables: CSV, TSV and XLSX read into rows, and checked against the
table schema a workflow declares for an input.

Reading is bounded (rows, columns, cell size), so a hostile file costs little. A registered
table keeps only a :class:`~snakedeck.documents.TableSummary` (columns, row count, preview);
the rows are read again from the file's content when a submit validates the sheet and when the
runner hands it to Snakemake.

**Where an error is.** Rows are numbered as a spreadsheet shows them: the header is row 1, so
the first data row is row 2 (and, for CSV/TSV without quoted line breaks, the line number).
Errors name their place as ``row <n>.<column>``, a missing column as ``<column>``, and the
service prefixes ``inputs.<input name>.``, e.g. ``inputs.samples.row 3.fastq1``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final

from snakedeck.documents import TableSummary

MAX_ROWS: Final = 100_000
MAX_COLUMNS: Final = 500
MAX_CELL: Final = 32 * 1024
"""Characters in one cell."""
PREVIEW_ROWS: Final = 20
FORMATS: Final = ("csv", "tsv", "xlsx")
EXTENSIONS: Final = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "xlsx"}
COLUMN_TYPES: Final = ("string", "integer", "number", "boolean")
TRUE: Final = frozenset({"true", "yes", "y", "1"})
FALSE: Final = frozenset({"false", "no", "n", "0"})
XLSX_MAGIC: Final = b"PK\x03\x04"


class TableError(ValueError):
    """A file that is not a readable table, or a table that breaks its schema; ``where`` is
    ``row <n>.<column>``, ``<column>`` or ``""`` (the whole table)."""

    def __init__(self, message: str, where: str = "") -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


@dataclass
class Table:
    format: str
    columns: list[str]
    rows: list[dict[str, Any]]
    row_numbers: list[int]
    """The spreadsheet row number of each row (header = 1)."""

    def summary(self) -> TableSummary:
        return {
            "format": self.format,
            "columns": list(self.columns),
            "rows": len(self.rows),
            "preview": [dict(r) for r in self.rows[:PREVIEW_ROWS]],
        }


def detect_format(name: str, head: bytes) -> str | None:
    """``csv``, ``tsv`` or ``xlsx`` from the file name's extension, else from its first bytes."""
    lower = name.lower()
    for ext, fmt in EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    try:
        first = head.decode("utf-8-sig").splitlines()[0] if head.strip() else ""
    except (UnicodeDecodeError, IndexError):
        return None
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    return None


def read_table(source: IO[bytes], fmt: str) -> Table:
    """Read a whole table (bounded); :class:`TableError` if it is not one."""
    if fmt == "xlsx":
        header, rows = _xlsx_rows(source)
    elif fmt in ("csv", "tsv"):
        header, rows = _text_rows(source, "," if fmt == "csv" else "\t")
    else:
        raise TableError(f"{fmt!r} is not a table format ({', '.join(FORMATS)})")
    return _build(fmt, header, rows)


def _build(fmt: str, header: list[Any] | None, rows: Iterator[tuple[int, list[Any]]]) -> Table:
    if header is None:
        raise TableError("the table is empty: it needs a header row naming its columns")
    columns = [_cell(h, "row 1") for h in header]
    while columns and columns[-1] == "":
        columns.pop()
    if not columns:
        raise TableError("the header row (row 1) names no columns")
    if len(columns) > MAX_COLUMNS:
        raise TableError(f"more than {MAX_COLUMNS} columns")
    for i, name in enumerate(columns, start=1):
        if name == "":
            raise TableError(f"column {i} of the header row has no name", "row 1")
        if columns.index(name) != i - 1:
            raise TableError(f"column {name!r} appears twice in the header", "row 1")
    out: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, cells in rows:
        values = [_cell(c, f"row {number}") for c in cells]
        if all(v == "" or v is None for v in values):
            continue
        extra = [v for v in values[len(columns) :] if v not in ("", None)]
        if extra:
            raise TableError(
                f"has {len(values)} cells but the header names {len(columns)} columns",
                f"row {number}",
            )
        if len(out) >= MAX_ROWS:
            raise TableError(f"more than {MAX_ROWS} rows")
        values += [""] * (len(columns) - len(values))
        out.append(dict(zip(columns, values, strict=False)))
        numbers.append(number)
    return Table(fmt, columns, out, numbers)


def _cell(value: Any, where: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    text = str(value).strip()
    if len(text) > MAX_CELL:
        raise TableError(f"a cell is longer than {MAX_CELL} characters", where)
    return text


def _text_rows(source: IO[bytes], delimiter: str) -> tuple[list[Any] | None, Iterator[Any]]:
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
    reader = csv.reader(text, delimiter=delimiter)

    def guarded() -> Iterator[list[str]]:
        try:
            yield from reader
        except csv.Error as exc:
            raise TableError(f"not a readable table: {exc}", f"row {reader.line_num}") from None
        except UnicodeDecodeError:
            raise TableError("not UTF-8 text (is it a spreadsheet or a binary file?)") from None

    records = guarded()
    header: list[Any] | None = None
    number = 0
    for row in records:
        number += 1
        if any(c.strip() for c in row):
            header = row
            break

    def body() -> Iterator[tuple[int, list[Any]]]:
        n = number
        for row in records:
            n += 1
            yield n, row

    return header, body()


def _xlsx_rows(source: IO[bytes]) -> tuple[list[Any] | None, Iterator[Any]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    spool = _seekable(source)
    try:
        book = load_workbook(spool, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TableError(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        if not book.worksheets:
            raise TableError("the workbook has no sheets")
        cells = book.worksheets[0].iter_rows(values_only=True)
        header: list[Any] | None = None
        number = 0
        for row in cells:
            number += 1
            if any(v is not None and str(v).strip() for v in row):
                header = list(row)
                break
        rows = [(n, list(r)) for n, r in enumerate(_bounded(cells), start=number + 1)]
    finally:
        book.close()
    return header, iter(rows)


def _bounded(cells: Iterator[Any]) -> Iterator[Any]:
    """Rows of a worksheet, refusing far more than :data:`MAX_ROWS` (blank rows included)."""
    for i, row in enumerate(cells):
        if i > 2 * MAX_ROWS:
            raise TableError(f"more than {MAX_ROWS} rows")
        yield row


def _seekable(source: IO[bytes]) -> IO[bytes]:
    if getattr(source, "seekable", lambda: False)():
        return source
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    shutil.copyfileobj(source, spool)
    spool.seek(0)
    return spool  # type: ignore[return-value]


# -- table schemas ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    required: bool = True
    """The column must be present and every row must fill it."""
    pattern: str | None = None
    """A regular expression the whole (text of the) cell must match."""
    unique: bool = False
    file_kinds: tuple[str, ...] | None = None
    """The cell names a registered file (its id) of one of these kinds."""


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[Column, ...]
    min_rows: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def file_columns(self) -> dict[str, tuple[str, ...]]:
        return {c.name: c.file_kinds for c in self.columns if c.file_kinds is not None}

    def to_dict(self) -> dict[str, Any]:
        columns: list[dict[str, Any]] = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.name, "type": c.type, "required": c.required}
            if c.pattern is not None:
                item["pattern"] = c.pattern
            if c.unique:
                item["unique"] = True
            if c.file_kinds is not None:
                item["file"] = {"kinds": list(c.file_kinds)}
            columns.append(item)
        return {"columns": columns, "min_rows": self.min_rows}


def parse_schema(raw: Any, known_kinds: tuple[str, ...]) -> TableSchema:
    """A ``table:`` declaration of workflow.yaml; ``ValueError`` says what is wrong."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("columns"), list):
        raise ValueError("table must be a mapping with a list of columns")
    unknown = set(raw) - {"columns", "min_rows"}
    if unknown:
        raise ValueError(f"table has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    min_rows = raw.get("min_rows", 1)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 0:
        raise ValueError("table.min_rows must be a non-negative integer")
    columns: list[Column] = []
    for i, col in enumerate(raw["columns"]):
        if not isinstance(col, Mapping) or not isinstance(col.get("name"), str) or not col["name"]:
            raise ValueError(f"table.columns[{i}] needs a name")
        bad = set(col) - {"name", "type", "required", "pattern", "unique", "file", "description"}
        if bad:
            raise ValueError(f"table column {col['name']!r} has unknown keys: {sorted(bad)}")
        kind = col.get("type", "string")
        if kind not in COLUMN_TYPES:
            raise ValueError(f"column {col['name']!r}: type must be one of {COLUMN_TYPES}")
        pattern = col.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ValueError(f"column {col['name']!r}: bad pattern: {exc}") from None
        kinds: tuple[str, ...] | None = None
        if "file" in col:
            spec = col["file"]
            wanted = spec.get("kinds", spec.get("kind")) if isinstance(spec, Mapping) else None
            if isinstance(wanted, str):
                wanted = [wanted]
            if not isinstance(wanted, list) or not all(k in known_kinds for k in wanted):
                raise ValueError(
                    f"column {col['name']!r}: file needs kind(s) among {', '.join(known_kinds)}"
                )
            kinds = tuple(wanted)
        columns.append(
            Column(
                name=col["name"],
                type=kind,
                required=bool(col.get("required", True)),
                pattern=pattern,
                unique=bool(col.get("unique", False)),
                file_kinds=kinds,
            )
        )
    return TableSchema(tuple(columns), min_rows)


def validate(table: Table, schema: TableSchema) -> tuple[list[dict[str, Any]], list[TableError]]:
    """The rows converted to the schema's types (empty optional cells: ``None``), and every
    problem found (all of them, not just the first)."""
    errors: list[TableError] = []
    present = set(table.columns)
    for col in schema.columns:
        if col.required and col.name not in present:
            errors.append(TableError("this column is required but the table has none", col.name))
    if len(table.rows) < schema.min_rows:
        errors.append(TableError(f"needs at least {schema.min_rows} row(s), has {len(table.rows)}"))
    typed: list[dict[str, Any]] = []
    seen: dict[str, dict[Any, int]] = {c.name: {} for c in schema.columns if c.unique}
    for number, row in zip(table.row_numbers, table.rows, strict=True):
        out = dict(row)
        for col in schema.columns:
            if col.name not in present:
                out[col.name] = None
                continue
            where = f"row {number}.{col.name}"
            value = row.get(col.name, "")
            if value == "" or value is None:
                if col.required:
                    errors.append(TableError("is empty; this column is required", where))
                out[col.name] = None
                continue
            try:
                converted = _convert(value, col.type)
            except ValueError as exc:
                errors.append(TableError(str(exc), where))
                continue
            if col.pattern is not None and not re.fullmatch(col.pattern, str(value)):
                errors.append(TableError(f"{value!r} does not match {col.pattern!r}", where))
            if col.unique:
                first = seen[col.name].setdefault(converted, number)
                if first != number:
                    errors.append(TableError(f"{value!r} already appears in row {first}", where))
            out[col.name] = converted
        typed.append(out)
    return typed, errors


def _convert(value: Any, kind: str) -> Any:
    if kind == "string":
        return value if isinstance(value, str) else _text(value)
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        raise ValueError(f"{value!r} is not an integer")
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            number = float(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false, yes/no, 1/0)")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
