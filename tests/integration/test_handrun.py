"""A user's own ``snakemake --logger snakedeck`` (no runner): the plugin records the whole run,
forwards it while Snakemake runs, and leaves what it could not deliver for ``snakedeck replay``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from cli.replay import replay
from consumer.service import Consumer
from snakedeck.settings import Settings
from snakedeck.store import JobFilter, Store
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The demo workflow copied into a user's own project folder named ``demo``."""
    proj = tmp_path / "demo"
    proj.mkdir()
    shutil.copy(REPO / "workflows" / "demo" / "Snakefile", proj / "Snakefile")
    return proj


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snakemake_by_hand(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    return subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--cores", "2", "--config", "samples=3",
            "sleep=0.1", "--logger", "snakedeck", *args,
        ],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def spooled(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_complete_run(store: Store, run_id: str, n_events: int) -> None:
    run = store.get_run(run_id)
    assert run is not None
    assert run["state"] == "COMPLETE"
    assert run["workflow"] == "demo"
    assert [e["seq"] for e in store.list_events(run_id, limit=10_000)] == list(
        range(1, n_events + 1)
    )
    jobs = store.list_jobs(run_id, JobFilter(), page_size=100).items
    assert len(jobs) == 8 and {j["state"] for j in jobs} == {"done"}
    assert run["progress"]["done"] == run["progress"]["total"] == 8


def test_hand_run_is_recorded_live(
    settings: Settings, store: Store, consumer: Consumer, project: Path, amqp_url: str
) -> None:
    run_id = "hand-live-1"
    proc = snakemake_by_hand(
        project,
        "--logger-snakedeck-amqp-url", amqp_url,
        "--logger-snakedeck-namespace", settings.namespace,
        "--logger-snakedeck-run-id", run_id,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "every event delivered" in proc.stderr
    spool = project / ".snakemake" / "snakedeck" / f"{run_id}.jsonl"
    events = spooled(spool)
    assert events[0]["data"] == {"state": "INITIALIZING", "workflow": "demo", "hand_run": True}
    assert events[-1]["data"] == {"state": "COMPLETE"}
    wait_for(lambda: (store.get_run(run_id) or {}).get("last_seq") == len(events), 60, "events")
    assert_complete_run(store, run_id, len(events))


def test_hand_run_without_broker_leaves_the_spool_for_replay(
    settings: Settings, store: Store, consumer: Consumer, project: Path
) -> None:
    proc = snakemake_by_hand(
        project,
        "--logger-snakedeck-amqp-url", f"amqp://guest:guest@127.0.0.1:{closed_port()}/",
        "--logger-snakedeck-drain-timeout", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"snakedeck replay (\S+\.jsonl)", proc.stderr)
    assert m, proc.stderr[-3000:]
    spool = Path(m.group(1))
    run_id = spool.stem
    events = spooled(spool)
    assert [e["data"]["state"] for e in events if e["type"] == "run_state"] == [
        "INITIALIZING",
        "RUNNING",
        "COMPLETE",
    ]
    assert sum(e["type"] == "job_finished" for e in events) == 8
    assert store.get_run(run_id) is None

    assert replay(spool, settings, progress=False, timeout=30) == 0
    wait_for(lambda: (store.get_run(run_id) or {}).get("last_seq") == len(events), 60, "replay")
    assert_complete_run(store, run_id, len(events))
    assert replay(spool, settings, progress=False, timeout=30) == 0  # nothing left: a no-op


def forwarding_hand_run(
    project: Path, settings: Settings, amqp_url: str, run_id: str
) -> tuple[subprocess.Popen[str], Path]:
    """A forwarding hand-run in its own process group, as a terminal starts it, once its first
    job has started: the process and its spool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "snakemake", "--cores", "1", "--config", "samples=3",
            "sleep=2", "--logger", "snakedeck",
            "--logger-snakedeck-amqp-url", amqp_url,
            "--logger-snakedeck-namespace", settings.namespace,
            "--logger-snakedeck-run-id", run_id,
        ],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    spool = project / ".snakemake" / "snakedeck" / f"{run_id}.jsonl"
    try:
        wait_for(
            lambda: spool.is_file() and '"job_started"' in spool.read_text(), 120, "a started job"
        )
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, spool


def forwarding_processes(spool: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "snakemake_logger_plugin_snakedeck.forwarding" in cmdline and str(spool) in cmdline:
            found.append(proc)
    return found


def test_ctrl_c_on_a_hand_run_still_delivers_its_cancellation(
    settings: Settings, store: Store, consumer: Consumer, project: Path, amqp_url: str
) -> None:
    """Ctrl-C reaches the whole process group: the forwarding process must outlive Snakemake's
    shutdown and deliver every event Snakemake spooled, its CANCELED included when Snakemake
    got to write it (a Ctrl-C that lands in one of Snakemake's imports kills it mid-way)."""
    run_id = "hand-ctrl-c-1"
    proc, spool = forwarding_hand_run(project, settings, amqp_url, run_id)
    try:
        time.sleep(0.5)  # into the job's run, past Snakemake's start-up imports
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    wait_for(lambda: not forwarding_processes(spool), 60, "the forwarding process to exit")
    events = spooled(spool)
    wait_for(lambda: (store.get_run(run_id) or {}).get("last_seq") == len(events), 60, "events")
    run = store.get_run(run_id)
    assert run is not None
    states = [e["data"]["state"] for e in events if e["type"] == "run_state"]
    assert run["state"] == states[-1]
    if f"snakedeck: run {run_id}: " in err:  # Snakemake closed its logger: the plugin ended it
        assert "every event delivered" in err, err[-3000:]
        assert events[-1]["data"] == {"state": "CANCELED", "reason": "interrupted"}


def test_a_killed_hand_run_still_delivers_what_it_spooled(
    settings: Settings, store: Store, consumer: Consumer, project: Path, amqp_url: str
) -> None:
    """Snakemake killed outright writes no last event, but what it spooled before still reaches
    the store: the forwarding process sees its pipe close, drains the spool and exits."""
    run_id = "hand-killed-1"
    proc, spool = forwarding_hand_run(project, settings, amqp_url, run_id)
    try:
        proc.kill()  # Snakemake alone: its forwarding process and its job live on
        proc.communicate(timeout=60)
        wait_for(lambda: not forwarding_processes(spool), 60, "the forwarding process to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    events = spooled(spool)
    assert any(e["type"] == "job_started" for e in events)
    wait_for(lambda: (store.get_run(run_id) or {}).get("last_seq") == len(events), 60, "events")
    run = store.get_run(run_id)
    assert run is not None and run["state"] == "RUNNING"  # nothing told it how the run ended
