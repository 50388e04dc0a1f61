"""The Snakemake logger plugin: records to envelopes, runner mode, hand-run lifecycle, discovery."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from snakemake.iocontainers import InputFiles, Wildcards
from snakemake.resources import Resources
from snakemake_interface_logger_plugins.common import LogEvent

import snakemake_logger_plugin_snakedeck as plugin
from snakedeck import envelope
from snakedeck.states import RunState, can_move

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "workflows" / "demo" / "Snakefile"


@dataclass
class Common:
    dryrun: bool = False
    printshellcmds: bool = False
    nocolor: bool = True
    quiet: object = None
    debug_dag: bool = False
    verbose: bool = False
    show_failed_logs: bool = False
    stdout: bool = False


def record(msg: object = "hello", level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("snakemake.logging", level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def read_spool(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SNAKEDECK_"):
            monkeypatch.delenv(name)


def test_job_info_record_becomes_plain_envelope() -> None:
    resources = Resources.from_mapping({"mem_mb": 2000, "tmpdir": "/tmp", "_cores": 2})
    inputs = InputFiles(["a.txt", "b.txt", "c.txt"])
    inputs._set_name("ref", 0)
    inputs._set_name("reads", 1, 3)
    rec = record(
        " Rule: count, Jobid: 3",
        event=LogEvent.JOB_INFO,
        jobid=3,
        rule_name="count",
        wildcards=Wildcards(fromdict={"sample": "s1"}),
        resources=resources,
        input=inputs,
        output=InputFiles(["x", "y"]),
        threads=2,
    )
    rec.created = 1_764_060_375.601
    ev = plugin.record_to_envelope("run-1", rec)
    envelope.validate(ev, require_seq=False)
    assert ev["type"] == "job_info"
    assert ev["seq"] is None and ev["source"] == "snakemake" and ev["level"] == "info"
    assert ev["ts"] == envelope.iso_from_epoch(1_764_060_375.601)
    assert ev["msg"] == " Rule: count, Jobid: 3"
    data = ev["data"]
    assert data["wildcards"] == {"sample": "s1"}
    assert data["resources"] == {"mem_mb": 2000, "tmpdir": "/tmp", "_cores": 2}
    assert data["input"] == {"ref": "a.txt", "reads": ["b.txt", "c.txt"]}
    assert data["output"] == ["x", "y"]
    assert data["jobid"] == 3 and data["threads"] == 2
    # no logging internals leak into data
    for internal in ("levelname", "pathname", "thread", "created", "msg", "args", "event"):
        assert internal not in data
    json.dumps(ev, allow_nan=False)


def test_plain_log_lines_levels_and_unknown_events() -> None:
    ev = plugin.record_to_envelope("r", record("just text", logging.WARNING))
    assert (ev["type"], ev["level"], ev["msg"], ev["data"]) == ("log", "warning", "just text", {})
    ev = plugin.record_to_envelope("r", record("x", logging.CRITICAL, event="brand_new"))
    assert (
        ev["type"] == "log" and ev["data"] == {"event": "brand_new"} and ev["level"] == "critical"
    )
    ev = plugin.record_to_envelope("r", record(None, event=LogEvent.PROGRESS, done=1, total=4))
    assert ev["type"] == "progress" and ev["data"] == {"done": 1, "total": 4} and ev["msg"] == ""
    rec = logging.LogRecord("x", logging.INFO, "f", 1, "%d jobs", (3,), None)
    assert plugin.record_to_envelope("r", rec)["msg"] == "3 jobs"
    err = plugin.record_to_envelope(
        "r", record("boom", logging.ERROR, event=LogEvent.ERROR, exception=ValueError("bad"))
    )
    assert err["type"] == "error" and err["data"]["exception"] == "bad"


def test_guess_workflow_name(tmp_path: Path) -> None:
    assert plugin.guess_workflow_name(["--snakefile", str(DEMO)], tmp_path) == "demo"
    assert plugin.guess_workflow_name([f"--snakefile={DEMO}"], tmp_path) == "demo"
    assert plugin.guess_workflow_name(["-s", "sub/Snakefile"], tmp_path) == "sub"
    proj = tmp_path / "myproj"
    (proj / "workflow").mkdir(parents=True)
    (proj / "workflow" / "Snakefile").write_text("")
    assert plugin.guess_workflow_name(["--cores", "1"], proj) == "myproj"
    (proj / "Snakefile").write_text("")
    assert plugin.guess_workflow_name([], proj) == "myproj"


def make_handler(**settings: object) -> plugin.LogHandler:
    return plugin.LogHandler(Common(), plugin.LogHandlerSettings(**settings))


def test_runner_mode_spools_only(tmp_path: Path, no_env: None) -> None:
    spool = tmp_path / "events.jsonl"
    handler = make_handler(spool=str(spool), run_id="r-1")
    assert not handler.hand_run and handler.spool_path == spool
    assert spool.exists() and spool.read_text() == ""
    handler.handle(record("Building DAG of jobs..."))
    handler.handle(record(None, event=LogEvent.JOB_ERROR, jobid=1, rule_name="a"))
    handler.close()
    handler.close()  # Snakemake closes twice
    events = read_spool(spool)
    assert [e["type"] for e in events] == ["log", "job_error"]
    assert all(e["run_id"] == "r-1" and e["source"] == "snakemake" for e in events)
    handler.handle(record("after close"))  # ignored, never raises
    assert len(read_spool(spool)) == 2


def test_invalid_run_id_is_refused(tmp_path: Path, no_env: None) -> None:
    with pytest.raises(ValueError, match="run-id"):
        make_handler(spool=str(tmp_path / "s.jsonl"), run_id="../etc")


def test_dry_run_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    handler = plugin.LogHandler(Common(dryrun=True), plugin.LogHandlerSettings())
    handler.handle(record("x"))
    handler.close()
    assert not (tmp_path / ".snakemake").exists()


@pytest.mark.parametrize(
    ("events", "state"),
    [
        ([("workflow_started", "info")], "COMPLETE"),
        ([("workflow_started", "info"), ("job_error", "error")], "EXECUTOR_ERROR"),
        ([("error", "error")], "SYSTEM_ERROR"),
        (
            [("workflow_started", "info"), ("log:Terminating on user request", "warning")],
            "CANCELED",
        ),
    ],
)
def test_hand_run_without_broker_records_a_whole_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_env: None,
    events: list[tuple[str, str]],
    state: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    handler = make_handler(workflow="mine")
    assert handler.hand_run
    assert handler.spool_path == tmp_path / ".snakemake" / "snakedeck" / f"{handler.run_id}.jsonl"
    for kind, level in events:
        lvl = getattr(logging, level.upper())
        if kind.startswith("log:"):
            handler.handle(record(kind[4:], lvl))
        else:
            handler.handle(record("m", lvl, event=kind))
    handler.close()
    handler.close()
    spooled = read_spool(handler.spool_path)
    first, last = spooled[0], spooled[-1]
    assert first["type"] == "run_state" and first["data"]["state"] == "INITIALIZING"
    assert first["data"]["workflow"] == "mine" and first["data"]["hand_run"] is True
    assert last["type"] == "run_state" and last["data"]["state"] == state
    lifecycle = [RunState(e["data"]["state"]) for e in spooled if e["type"] == "run_state"]
    steps = zip([RunState.QUEUED, *lifecycle], lifecycle, strict=False)
    assert all(can_move(a, b) for a, b in steps), lifecycle  # a legal WES lifecycle
    assert f"snakedeck replay {handler.spool_path}" in capsys.readouterr().err


def test_given_run_id_and_spool_with_amqp_flag_is_a_hand_run(tmp_path: Path, no_env: None) -> None:
    # An unreachable broker: forwarding fails or retries in the background, never raises here.
    spool = tmp_path / "x.jsonl"
    handler = make_handler(
        spool=str(spool),
        run_id="given",
        amqp_url="amqp://guest:guest@127.0.0.1:1/",
        drain_timeout=0.2,
    )
    assert handler.hand_run and handler.run_id == "given"
    handler.close()
    states = [e["data"]["state"] for e in read_spool(spool) if e["type"] == "run_state"]
    assert states == ["INITIALIZING", "RUNNING", "COMPLETE"]


def test_plugin_module_imports_lightly() -> None:
    code = (
        "import sys, snakemake_logger_plugin_snakedeck\n"
        "heavy = {'pika', 'pymongo', 'flask', 'jsonschema', 'yaml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_snakemake_discovers_the_plugin(tmp_path: Path, no_env: None) -> None:
    spool = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--snakefile", str(DEMO), "--directory",
            str(tmp_path / "work"), "--cores", "2", "--config", "samples=1", "sleep=0",
            "--logger", "snakedeck", "--logger-snakedeck-spool", str(spool),
            "--logger-snakedeck-run-id", "disc-1",
        ],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = read_spool(spool)
    for ev in events:
        envelope.validate(ev, require_seq=False)
    types = [e["type"] for e in events]
    assert "run_state" not in types  # the runner owns the lifecycle in runner mode
    assert types.count("job_finished") == 4
    stats = next(e for e in events if e["type"] == "run_info")["data"]["stats"]
    assert stats == {"make_sample": 1, "count": 1, "summarize": 1, "all": 1, "total": 4}
    info = next(e for e in events if e["type"] == "job_info" and e["data"]["rule_name"] == "count")
    assert info["data"]["wildcards"] == {"sample": "s1"}
    assert isinstance(info["data"]["resources"], dict) and "_cores" in info["data"]["resources"]
    assert info["data"]["log"] == ["logs/count/s1.log"]
