"""Runner pieces that need no broker: run directories, inputs, commands, spool summaries, argv."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from runner.rundir import RunDirError, cancel_marker_path, resolve_inputs, run_dir
from runner.service import BadCommand, SpoolSummary, parse_command
from runner.supervisor import group_members, snakemake_argv
from snakedeck import envelope


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", "-x", "a b", "x" * 65, None])
def test_run_dir_refuses_unsafe_ids(tmp_path: Path, bad: object) -> None:
    with pytest.raises(RunDirError):
        run_dir(tmp_path, bad)  # type: ignore[arg-type]


def test_run_dir_layout(tmp_path: Path) -> None:
    rd = run_dir(tmp_path / "runs", "r-1").create()
    assert rd.root == (tmp_path / "runs" / "r-1").resolve()
    assert rd.work.is_dir() and not rd.exists()
    assert rd.cancel_marker == cancel_marker_path(rd.spool) == rd.root / "events.jsonl.cancel"
    rd.write_config({"b": 1, "a": [1]})
    assert json.loads(rd.config.read_text()) == {"a": [1], "b": 1}
    argv = snakemake_argv(Path("/wf/Snakefile"), rd, "r-1", 3)
    assert argv[1:3] == ["-m", "snakemake"]
    flags = dict(itertools.pairwise(argv))
    assert flags["--directory"] == str(rd.work) and flags["--cores"] == "3"
    assert flags["--logger-snakedeck-spool"] == str(rd.spool)
    assert flags["--logger-snakedeck-run-id"] == "r-1"


def test_resolve_inputs(tmp_path: Path) -> None:
    files = tmp_path / "files"
    (files / "f1").mkdir(parents=True)
    (files / "f1" / "reads.txt").write_text("x")
    (files / "f2.txt").write_text("y")
    got = resolve_inputs(files, [{"file_id": "f1", "name": "extra"}, {"file_id": "f2.txt"}])
    assert got == {
        "extra": str((files / "f1" / "reads.txt").resolve()),
        "f2.txt": str((files / "f2.txt").resolve()),
    }
    assert resolve_inputs(files, None) == {}
    with pytest.raises(RunDirError, match="not found"):
        resolve_inputs(files, [{"file_id": "nope"}])
    with pytest.raises(RunDirError, match="outside"):
        resolve_inputs(files, [{"file_id": "x", "path": str(tmp_path / "secret")}])
    with pytest.raises(RunDirError, match="outside"):
        resolve_inputs(files, [{"file_id": "x", "path": "../secret"}])


def test_parse_command() -> None:
    ok = {"run_id": "r1", "workflow": "demo", "config": {}, "inputs": []}
    assert parse_command(ok) is ok
    for bad in (
        [],
        {"workflow": "demo"},
        {"run_id": "../x", "workflow": "demo"},
        {"run_id": "r1", "workflow": 3},
        {"run_id": "r1", "workflow": "demo", "config": []},
        {"run_id": "r1", "workflow": "demo", "inputs": {}},
    ):
        with pytest.raises(BadCommand):
            parse_command(bad)


def test_spool_summary(tmp_path: Path) -> None:
    spool = tmp_path / "events.jsonl"
    events = [
        envelope.run_state("r", "INITIALIZING"),
        envelope.make("r", "workflow_started"),
        envelope.make("r", "job_error", msg="Error in rule a, jobid: 1"),
        envelope.make("r", "error", msg="WorkflowError:\nAt least one job failed"),
        envelope.run_state("r", "RUNNING"),
    ]
    spool.write_text("".join(envelope.dumps(e) + "\n" for e in events) + '{"partial')
    summary = SpoolSummary(spool)
    assert summary.started and summary.last_state == "RUNNING"
    assert summary.failure_reason("x") == "Error in rule a, jobid: 1"
    empty = SpoolSummary(tmp_path / "missing.jsonl")
    assert not empty.started and empty.last_state is None
    assert empty.failure_reason("exited with code 1") == "exited with code 1"


def test_group_members_of_a_missing_group() -> None:
    assert group_members(2**22 + 12345) == []
