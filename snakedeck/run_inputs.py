"""A run's inputs checked against its workflow's declarations, with the store: what a submit
refuses up front, and the sheet reading the runner repeats.

``inputs`` maps declared input names to registered file ids. Every problem is collected, each
as ``{field, message}`` with ``field`` = ``inputs.<name>`` (the input), or for a sample sheet
``inputs.<name>.<column>`` (a missing column) and ``inputs.<name>.row <n>.<column>`` (a cell;
rows numbered as a spreadsheet shows them, header = row 1). Nothing here names a server path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from snakedeck import tables
from snakedeck.documents import FileDoc, RunFileRef
from snakedeck.store.base import Store
from snakedeck.store.errors import BlobNotFound
from snakedeck.workflows import InputSpec, Workflow

FILE_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_ERRORS: Final = 50


def is_file_id(value: object) -> bool:
    return isinstance(value, str) and bool(FILE_ID_RE.match(value))


def file_ref(doc: FileDoc) -> RunFileRef:
    return {
        "file_id": doc["file_id"],
        "sha256": doc["sha256"],
        "name": doc.get("name", ""),
        "kind": doc.get("kind", "other"),
        "format": doc.get("format", ""),
        "size": int(doc.get("size", 0)),
    }


@dataclass
class CheckedInputs:
    refs: dict[str, RunFileRef] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.errors.append({"field": where, "message": message})

    @property
    def file_ids(self) -> list[str]:
        ids: set[str] = set()
        for ref in self.refs.values():
            ids.add(ref["file_id"])
            ids.update((ref.get("files") or {}).keys())
        return sorted(ids)


@dataclass
class Sheet:
    rows: list[dict[str, Any]]
    """Typed by the schema (empty optional cells: ``None``)."""
    numbers: list[int]
    """Each row's spreadsheet row number."""
    problems: list[tables.TableError]


def read_sheet(store: Store, ref: Mapping[str, Any], schema: tables.TableSchema) -> Sheet:
    """The sheet's rows typed by ``schema``, and every schema problem."""
    try:
        with store.open_blob(str(ref["sha256"])) as f:
            table = tables.read_table(f, str(ref.get("format") or "csv"))
    except tables.TableError as exc:
        return Sheet([], [], [exc])
    rows, problems = tables.validate(table, schema)
    return Sheet(rows, table.row_numbers, problems)


def check_inputs(store: Store, workflow: Workflow, inputs: Mapping[str, Any]) -> CheckedInputs:
    """Check names, presence, file ids, kinds, formats and sheets; collect every problem."""
    out = CheckedInputs()
    declared = {spec.name: spec for spec in workflow.inputs}
    for name in inputs:
        if name not in declared:
            known = ", ".join(declared) or "none"
            out.add(
                f"inputs.{name}",
                f"workflow {workflow.name!r} has no input named {name!r} (its inputs: {known})",
            )
    for spec in workflow.inputs:
        value = inputs.get(spec.name)
        where = f"inputs.{spec.name}"
        if value is None or value == "":
            if spec.required:
                what = f" ({spec.description})" if spec.description else ""
                out.add(where, f"is required: give the id of a registered file{what}")
            continue
        doc = _registered(store, value, where, out)
        if doc is None:
            continue
        if not _fits(spec, doc, where, out):
            continue
        ref = file_ref(doc)
        if spec.table is not None:
            ref["files"] = _check_sheet(store, spec, ref, out)
        out.refs[spec.name] = ref
    if len(out.errors) > MAX_ERRORS:
        more = len(out.errors) - MAX_ERRORS
        out.errors = out.errors[:MAX_ERRORS]
        out.add("inputs", f"and {more} more problem(s) like these")
    return out


def _registered(store: Store, value: Any, where: str, out: CheckedInputs) -> FileDoc | None:
    if not is_file_id(value):
        out.add(where, f"{str(value)[:80]!r} is not a file id (register the file first)")
        return None
    doc = store.get_file(value)
    if doc is None:
        out.add(where, f"no registered file has the id {value!r}")
    return doc


def _fits(spec: InputSpec, doc: FileDoc, where: str, out: CheckedInputs) -> bool:
    kind = doc.get("kind", "other")
    fmt = doc.get("format", "")
    shown = f"file {doc['file_id']} ({doc.get('name', '')!r}) is {kind} ({fmt})"
    if spec.kinds and kind not in spec.kinds:
        out.add(where, f"{shown}; this input takes {' or '.join(spec.kinds)}")
        return False
    if spec.formats and fmt not in spec.formats:
        out.add(where, f"{shown}; this input takes the format(s) {', '.join(spec.formats)}")
        return False
    return True


def _check_sheet(
    store: Store, spec: InputSpec, ref: RunFileRef, out: CheckedInputs
) -> dict[str, RunFileRef]:
    assert spec.table is not None
    base = f"inputs.{spec.name}"
    try:
        sheet = read_sheet(store, ref, spec.table)
    except BlobNotFound:
        out.add(base, f"the content of file {ref['file_id']} is missing from the store")
        return {}
    problems = sheet.problems
    for problem in problems:
        out.add(f"{base}.{problem.where}" if problem.where else base, problem.message)
    files: dict[str, RunFileRef] = {}
    file_columns = spec.table.file_columns()
    if not file_columns or problems:
        return files
    seen: dict[str, FileDoc | None] = {}
    for number, row in zip(sheet.numbers, sheet.rows, strict=True):
        for column, kinds in file_columns.items():
            value = row.get(column)
            if value is None:
                continue
            where = f"{base}.row {number}.{column}"
            if value not in seen:
                seen[value] = store.get_file(value) if is_file_id(value) else None
            doc = seen[value]
            if doc is None:
                out.add(where, f"{str(value)[:80]!r} is not the id of a registered file")
                continue
            if doc.get("kind") not in kinds:
                out.add(
                    where,
                    f"file {value} ({doc.get('name', '')!r}) is {doc.get('kind')}; this column "
                    f"takes {' or '.join(kinds)}",
                )
                continue
            files[value] = file_ref(doc)
    return files
