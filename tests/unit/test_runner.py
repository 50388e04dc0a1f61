"""Runner pieces that need no broker: run directories, inputs, commands, spool summaries, argv."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner import exit_status
from runner.run import SpoolSummary
from runner.service import BadCommand, parse_command
from runner.supervisor import group_members, snakemake_argv
from snakedeck import envelope
from snakedeck.rundir import RunDirError, cancel_marker_path, run_dir

REPO = Path(__file__).resolve().parents[2]


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


def test_parse_command() -> None:
    ok = {"run_id": "r1", "workflow": "demo", "config": {}, "inputs": {}}
    assert parse_command(ok) is ok
    for bad in (
        [],
        {"workflow": "demo"},
        {"run_id": "../x", "workflow": "demo"},
        {"run_id": "r1", "workflow": 3},
        {"run_id": "r1", "workflow": "demo", "config": []},
        {"run_id": "r1", "workflow": "demo", "inputs": []},
        {"run_id": "r1", "workflow": "demo", "inputs": {"extra": "f1"}},
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


def test_spool_summary_finds_where_the_last_attempt_begins(tmp_path: Path) -> None:
    """A runner recovering a resumed run reads this attempt's cluster jobs only."""
    spool = tmp_path / "events.jsonl"
    first = [
        envelope.run_state("r", "INITIALIZING"),
        envelope.run_state("r", "RUNNING"),
        envelope.make("r", "job_cluster", data={"jobid": 3, "cluster_job_id": "17"}),
        envelope.run_state("r", "CANCELING"),
        envelope.run_state("r", "CANCELED"),
    ]
    spool.write_text("".join(envelope.dumps(e) + "\n" for e in first))
    assert SpoolSummary(spool).attempt_start == 0  # the last attempt is the first one
    resumed_at = spool.stat().st_size  # where a resume's spool_start is
    second = [
        envelope.run_state("r", "INITIALIZING", attempt=2),
        envelope.run_state("r", "RUNNING", attempt=2),
        envelope.make("r", "job_cluster", data={"jobid": 3, "cluster_job_id": "21"}),
    ]
    with spool.open("a") as f:
        f.write("".join(envelope.dumps(e) + "\n" for e in second))
    summary = SpoolSummary(spool)
    assert (summary.last_attempt, summary.attempt_start) == (2, resumed_at)
    assert SpoolSummary(spool, since=summary.attempt_start).cluster == {
        "3": {"cluster_job_id": "21"}
    }


def test_group_members_of_a_missing_group() -> None:
    assert group_members(2**22 + 12345) == []


def test_the_exit_recorder_writes_the_status_and_exits_the_same_way(tmp_path: Path) -> None:
    status = tmp_path / "exit.json"
    exit_status.supervise(tmp_path, os.getpid())
    for code in ("import sys; sys.exit(3)", "import os, signal; os.kill(os.getpid(), 9)"):
        rc = subprocess.run(
            [sys.executable, "-m", "runner.exit_status", str(status), "--", sys.executable,
             "-c", code],
            cwd=REPO, timeout=30, check=False,
        ).returncode  # fmt: skip
        recorded = exit_status.read(status)
        assert recorded is not None and recorded.returncode == rc
    assert rc == -9 and exit_status.read(status).signal == 9


def test_an_unsupervised_snakemake_is_stopped_after_the_orphan_grace(tmp_path: Path) -> None:
    """Its runner died and none adopted it: the recorder stops the run instead of leaving it
    running unobserved."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    exit_status.supervise(tmp_path, dead.pid)  # a runner that is gone
    status = tmp_path / "exit.json"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "runner.exit_status", "--orphan-grace", "1", str(status), "--",
         sys.executable, "-c", "import time; time.sleep(60)"],
        cwd=REPO, timeout=30, check=False, start_new_session=True, capture_output=True,
        text=True,
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert exit_status.read(status).signal == signal.SIGTERM
    assert "no runner has supervised this run" in proc.stderr


def test_a_jobs_top_process_is_known_by_its_command() -> None:
    from runner.sampler import matches
    from runner.spool_jobs import SpoolJob

    shell = SpoolJob("3", rule="hog", shellcmd="python -c 'x = 1'  out.json")
    assert matches(
        shell, ["/usr/bin/bash", "-c", "set -euo pipefail;  python -c 'x = 1'  out.json"]
    )
    # bash runs a lone last command in its own place: the command itself is the top process
    assert matches(shell, ["/venv/bin/python", "-c", "x = 1", "out.json"])
    assert not matches(shell, ["/venv/bin/python", "-c", "x = 2", "out.json"])
    run_block = SpoolJob("4", rule="plot", wildcards={"sample": "s1"})
    spawned = "cd /w && python -m snakemake --target-jobs 'plot:sample=s1' --mode subprocess"
    assert matches(run_block, ["/bin/sh", "-c", spawned])
    assert not matches(run_block, ["/bin/sh", "-c", spawned.replace("s1", "s2")])


def test_a_resumed_run_adds_rerun_incomplete(tmp_path: Path) -> None:
    rd = run_dir(tmp_path / "runs", "r-1").create()
    argv = snakemake_argv(Path("/wf/Snakefile"), rd, "r-1", 2, rerun_incomplete=True)
    assert argv[-1] == "--rerun-incomplete"
    assert "--rerun-incomplete" not in snakemake_argv(Path("/wf/Snakefile"), rd, "r-1", 2)


class _Owner:
    """The least of a runner a run handle needs before Snakemake starts (no store, no bus)."""

    def __init__(self, tmp_path: Path, executor: str) -> None:
        from unittest.mock import MagicMock

        from snakedeck.settings import Settings
        from snakedeck.workflows import WorkflowRegistry

        self.settings = Settings.from_env(
            {"SNAKEDECK_DATA_DIR": str(tmp_path), "SNAKEDECK_EXECUTOR": executor}
        )
        self.store = MagicMock()
        self.store.get_run.return_value = {}
        self.bus = MagicMock()
        self.registry = WorkflowRegistry(tmp_path / "workflows")
        self.runner_id, self.host, self.stopping = "r1", "h", False

    def still_holds(self, run_id: str) -> bool:
        return True


def _handle(tmp_path: Path, site_executor: str, yaml_text: str) -> tuple[Any, Any]:
    """A run of workflow ``wf`` (``yaml_text``), INITIALIZING, on a runner whose
    SNAKEDECK_EXECUTOR is ``site_executor``."""
    from runner.run import RunHandle
    from snakedeck.spool import SpoolWriter
    from snakedeck.states import RunState
    from snakedeck.store.claims import Claim

    wf_dir = tmp_path / "workflows" / "wf"
    wf_dir.mkdir(parents=True)
    (wf_dir / "workflow.yaml").write_text(yaml_text)
    (wf_dir / "Snakefile").write_text("rule all:\n    shell: 'true'\n")
    owner: Any = _Owner(tmp_path, site_executor)
    claim = Claim(run_id="run1", runner_id="r1", epoch=1, expires_at=0.0)
    handle = RunHandle(owner, "run1", claim, mode="execute", workflow="wf")
    handle.rd.create()
    handle.writer = SpoolWriter(handle.rd.spool)
    handle.state = RunState.INITIALIZING
    return handle, owner.registry.get("wf")


def test_a_workflow_asking_for_a_missing_executor_plugin_ends_the_run_system_error(
    tmp_path: Path,
) -> None:
    handle, workflow = _handle(tmp_path, "", "executor: no-such-cluster\n")
    handle._launch(workflow)
    assert handle.state == "SYSTEM_ERROR"
    assert handle.executor == "no-such-cluster" and handle._stop_signal == signal.SIGINT
    last = json.loads(handle.rd.spool.read_text().splitlines()[-1])
    assert "pip install snakemake-executor-plugin-no-such-cluster" in last["data"]["reason"]
    assert "workflow.yaml asks for 'no-such-cluster'" in last["data"]["reason"]


def test_the_sites_executor_is_the_runs_whatever_the_workflow_asks(tmp_path: Path) -> None:
    handle, _ = _handle(tmp_path, "local", "executor: no-such-cluster\n")
    assert handle._stop_signal == signal.SIGTERM  # before the workflow is known: the site's
    handle._recover_workflow()  # nothing recorded: resolved from the site and the workflow
    assert handle.executor == "local" and handle._cluster_watcher() is None
    handle.rd.write_executor("slurm")  # what a launch recorded
    handle._recover_workflow()
    assert handle.executor == "slurm" and handle._stop_signal == signal.SIGINT


def test_a_workflows_executor_is_used_when_the_site_sets_none(tmp_path: Path) -> None:
    handle, _ = _handle(tmp_path, "", "executor: slurm\n")
    assert handle.executor == "" and handle._stop_signal == signal.SIGTERM
    handle._recover_workflow()
    assert handle.executor == "slurm" and handle._stop_signal == signal.SIGINT
