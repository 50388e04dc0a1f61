"""Sample sheets: CSV, TSV and XLSX read alike, and schema errors that name row and column."""

from __future__ import annotations

import io

import pytest

from snakedeck import filekinds, tables
from snakedeck.tables import TableError

SCHEMA = tables.parse_schema(
    {
        "columns": [
            {"name": "sample", "pattern": "^[A-Za-z0-9_-]+$", "unique": True},
            {"name": "fastq1", "file": {"kind": "fastq"}},
            {"name": "fastq2", "file": {"kind": "fastq"}, "required": False},
            {"name": "depth", "type": "integer", "required": False},
            {"name": "paired", "type": "boolean", "required": False},
        ]
    },
    filekinds.KINDS,
)


def xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ROWS = [["sample", "fastq1", "fastq2", "depth"], ["s1", "f1", "", 10], ["s2", "f2", "f3", 7]]


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("csv", b"\xef\xbb\xbfsample,fastq1,fastq2,depth\ns1,f1,,10\n\ns2,f2,f3,7\n"),
        ("tsv", b"sample\tfastq1\tfastq2\tdepth\r\ns1\tf1\t\t10\r\ns2\tf2\tf3\t7\r\n"),
        ("xlsx", xlsx(ROWS)),
    ],
)
def test_every_format_reads_to_the_same_rows(fmt: str, data: bytes) -> None:
    table = tables.read_table(io.BytesIO(data), fmt)
    assert table.columns == ["sample", "fastq1", "fastq2", "depth"]
    summary = table.summary()
    assert summary["rows"] == 2 and summary["format"] == fmt
    typed, errors = tables.validate(table, SCHEMA)
    assert errors == []
    assert typed[0] == {
        "sample": "s1",
        "fastq1": "f1",
        "fastq2": None,
        "depth": 10,
        "paired": None,
    }
    assert typed[1]["depth"] == 7 and typed[1]["fastq2"] == "f3"


def test_schema_errors_name_row_and_column() -> None:
    data = b"sample,fastq2,depth,paired\ns 1,f1,x,maybe\ns2,,3,yes\ns2,,4,no\n"
    table = tables.read_table(io.BytesIO(data), "csv")
    _, errors = tables.validate(table, SCHEMA)
    where = {e.where: e.message for e in errors}
    assert "fastq1" in where and "required" in where["fastq1"]
    assert "does not match" in where["row 2.sample"]
    assert "not an integer" in where["row 2.depth"]
    assert "not a boolean" in where["row 2.paired"]
    assert "already appears in row 3" in where["row 4.sample"]


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("csv", b"", "empty"),
        ("csv", b"a,a\n1,2\n", "appears twice"),
        ("csv", b"a,,b\n1,2,3\n", "no name"),
        ("csv", b"a,b\n1,2,3\n", "row 2: has 3 cells"),
        ("csv", b"a,b\n\xff\xfe\x00\n", "not UTF-8"),
        ("csv", b"a\n" + b"x" * (tables.MAX_CELL + 1) + b"\n", "longer than"),
        ("xlsx", b"sample,fastq1\n", "not a readable XLSX"),
        ("xlsx", b"PK\x03\x04garbage", "not a readable XLSX"),
    ],
)
def test_what_is_not_a_table_is_named(fmt: str, data: bytes, message: str) -> None:
    with pytest.raises(TableError) as info:
        tables.read_table(io.BytesIO(data), fmt)
    assert message in str(info.value)


def test_rows_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "MAX_ROWS", 5)
    with pytest.raises(TableError, match="more than 5 rows"):
        tables.read_table(io.BytesIO(b"a\n" + b"1\n" * 6), "csv")


def test_format_detection() -> None:
    assert tables.detect_format("Sheet.XLSX", b"") == "xlsx"
    assert tables.detect_format("s.tsv", b"") == "tsv"
    assert tables.detect_format("sheet", b"a\tb\n") == "tsv"
    assert tables.detect_format("sheet", b"a,b\n") == "csv"
    assert tables.detect_format("sheet", b">seq\nACGT\n") is None


@pytest.mark.parametrize("bad", ["", ".", "..", "../../x", "/etc/passwd", "a\\b", "C:x", "a\x00"])
def test_client_file_names_that_are_paths_are_refused(bad: str) -> None:
    with pytest.raises(filekinds.FileKindError):
        filekinds.display_name(bad)


def test_plain_names_are_kept_and_anything_can_be_sanitized() -> None:
    assert filekinds.display_name(" reads R1.fastq.gz ") == "reads R1.fastq.gz"
    assert filekinds.sanitized_name("../../etc/passwd", "x") == "_.._etc_passwd"
    assert filekinds.sanitized_name("..", "fallback") == "fallback"


@pytest.mark.parametrize(
    ("name", "head", "kind", "expected"),
    [
        ("q.fa", b">q1\nACGT\n", None, ("fasta", "fasta")),
        ("noext", b">q1\nACGT\n", None, ("fasta", "fasta")),
        ("r.fq", b"@r1\nACGT\n+\nIIII\n", None, ("fastq", "fastq")),
        ("s.csv", b"a,b\n", None, ("table", "csv")),
        ("c.yaml", b"a: 1\n", None, ("config", "yaml")),
        ("notes", b"hello\n", None, ("text", "txt")),
        ("blob.bin", b"\x00\x01", None, ("other", "bin")),
        ("x.txt", b"a,b\n", "table", ("table", "csv")),
        ("cfg", b'{"a": 1}', "config", ("config", "json")),
    ],
)
def test_kinds_are_detected(name, head, kind, expected) -> None:
    assert filekinds.detect(name, head, kind) == expected


def test_gzipped_fastq_is_recognised() -> None:
    import gzip

    assert filekinds.detect("r.fastq.gz", gzip.compress(b"@r\nAC\n+\nII\n")) == (
        "fastq",
        "fastq.gz",
    )


@pytest.mark.parametrize(
    ("name", "head", "kind", "message"),
    [
        ("q.fa", b"ACGT\n", None, "is not FASTA"),
        ("x", b"@r\n", "fasta", "is not FASTA"),
        ("r.fq", b">x\n", None, "is not FASTQ"),
        ("x.bin", b"\x00\x01", "table", "is not a table"),
        ("x.bin", b"\xff\xfe\x00", "text", "is not text"),
        ("x", b"", "pdf", "is not one of"),
    ],
)
def test_a_kind_that_does_not_fit_is_refused(name, head, kind, message) -> None:
    with pytest.raises(filekinds.FileKindError, match=message):
        filekinds.detect(name, head, kind)


def test_config_files_must_be_mappings() -> None:
    assert filekinds.read_config(io.BytesIO(b"evalue: 0.001\n"), "yaml") == {"evalue": 0.001}
    for data, fmt in [(b"- a\n", "yaml"), (b"{bad", "json"), (b"a: [", "yaml")]:
        with pytest.raises(filekinds.FileKindError):
            filekinds.read_config(io.BytesIO(data), fmt)
