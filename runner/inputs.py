"""A run's registered input files, fetched from the store into its run directory.

The runner needs nothing but the store for them (not the gateway's disk): each file is the blob
its sha256 names, copied into ``work/inputs/<input>/`` and checked on the way. Snakemake gets
``config["inputs"][name]`` (a path relative to the work directory, its ``--directory``) and,
for sample sheets, ``config["tables"][name]`` (the rows, file-id cells turned into paths).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakedeck import tables
from snakedeck.filekinds import sanitized_name
from snakedeck.rundir import RunDir, RunDirError
from snakedeck.store.blobs import BlobStore, is_sha256
from snakedeck.store.errors import BlobNotFound
from snakedeck.workflows import INPUT_NAME_RE, Workflow

INPUTS_DIR = "inputs"
COPY_CHUNK = 256 * 1024


class InputsError(RunDirError):
    """A run's registered input cannot be staged; the message names the input, never a path."""


@dataclass
class StagedInputs:
    inputs: dict[str, str]
    """Input name → path of its file, relative to the run's work directory."""
    tables: dict[str, list[dict[str, Any]]]
    """Sample sheets' rows, typed by their schema, with file-id cells replaced by paths."""

    def config(self) -> dict[str, Any]:
        """What the run's Snakemake config gets: ``inputs`` and ``tables``."""
        return {"inputs": dict(self.inputs), "tables": {k: list(v) for k, v in self.tables.items()}}


def stage_inputs(
    store: BlobStore,
    rd: RunDir,
    workflow: Workflow | None,
    inputs: Mapping[str, Mapping[str, Any]] | None,
) -> StagedInputs:
    """Fetch every input's content from the store into ``work/inputs/<input>/<name>`` (a sheet's
    referenced files into ``work/inputs/<input>/<file id>/<name>``), checking each sha256.

    Names are sanitised display names: a client's name never becomes a path of its own."""
    staged = StagedInputs({}, {})
    base = (rd.work / INPUTS_DIR).resolve()
    for input_name, ref in (inputs or {}).items():
        if not isinstance(input_name, str) or not INPUT_NAME_RE.match(input_name):
            raise InputsError(f"input name {str(input_name)[:80]!r} is not a usable name")
        if not isinstance(ref, Mapping) or not is_sha256(ref.get("sha256")):
            raise InputsError(f"input {input_name!r} does not name a stored file")
        target = _place(base, input_name, None, ref)
        copy_verified(store, ref, target, f"input {input_name!r}")
        staged.inputs[input_name] = target.relative_to(rd.work.resolve()).as_posix()
        spec = workflow.input(input_name) if workflow is not None else None
        if spec is not None and spec.table is not None:
            staged.tables[input_name] = _stage_sheet(store, rd, base, input_name, ref, spec.table)
    return staged


def _stage_sheet(
    store: BlobStore,
    rd: RunDir,
    base: Path,
    input_name: str,
    ref: Mapping[str, Any],
    schema: tables.TableSchema,
) -> list[dict[str, Any]]:
    try:
        with store.open_blob(str(ref["sha256"])) as f:
            table = tables.read_table(f, str(ref.get("format") or "csv"))
    except BlobNotFound:
        raise InputsError(f"input {input_name!r}: its content is missing from the store") from None
    except tables.TableError as exc:
        raise InputsError(f"input {input_name!r} is not a readable table: {exc}") from None
    rows, problems = tables.validate(table, schema)
    if problems:
        raise InputsError(f"input {input_name!r} no longer fits its table schema: {problems[0]}")
    known = ref.get("files") or {}
    staged: dict[str, str] = {}
    for row in rows:
        for column in schema.file_columns():
            file_id = row.get(column)
            if file_id is None:
                continue
            if file_id not in staged:
                file_ref = known.get(file_id)
                if not isinstance(file_ref, Mapping) or not is_sha256(file_ref.get("sha256")):
                    raise InputsError(
                        f"input {input_name!r} names file {str(file_id)[:80]!r}, which the "
                        "submission did not record"
                    )
                target = _place(base, input_name, str(file_id), file_ref)
                copy_verified(store, file_ref, target, f"file {file_id} of input {input_name!r}")
                staged[file_id] = target.relative_to(rd.work.resolve()).as_posix()
            row[column] = staged[file_id]
    return rows


def _place(base: Path, input_name: str, file_id: str | None, ref: Mapping[str, Any]) -> Path:
    fallback = str(ref.get("file_id") or "file")
    name = sanitized_name(str(ref.get("name") or ""), fallback)
    folder = (
        base / input_name
        if file_id is None
        else base / input_name / sanitized_name(file_id, "file")
    )
    target = (folder / name).resolve()
    if not target.is_relative_to(base):
        raise InputsError(f"input {input_name!r}: file name {name!r} is not usable")
    return target


def copy_verified(store: BlobStore, ref: Mapping[str, Any], target: Path, what: str) -> None:
    """The blob ``ref["sha256"]`` names, written to ``target`` atomically and checked."""
    sha256 = str(ref["sha256"])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    try:
        with store.open_blob(sha256) as src, tmp.open("wb") as dst:
            while chunk := src.read(COPY_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except BlobNotFound:
        tmp.unlink(missing_ok=True)
        raise InputsError(f"{what}: its content is missing from the store") from None
    if digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise InputsError(f"{what}: the stored content does not match its sha256")
    os.replace(tmp, target)
