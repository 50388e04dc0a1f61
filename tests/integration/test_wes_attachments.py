"""WES ``workflow_attachment`` with ``SNAKEDECK_ALLOW_ATTACHMENTS`` on: a private workflow
uploaded as multipart files runs end to end (real gateway process, RabbitMQ, the runner and
Snakemake, SQLite), bad bundles are refused with the spec's ``ErrorResponse`` (validated
against the shipped spec) before anything runs, a cancelled private run resumes from its own
copy, and a runner whose own settings do not allow attachments refuses to run one.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from runner import exit_status
from snakedeck import envelope, projection
from snakedeck.bus import open_bus
from snakedeck.bus.base import Bus
from snakedeck.rundir import run_dir
from snakedeck.settings import Settings
from snakedeck.store import Store
from tests.integration.test_wes import TERMINAL, Client, form
from tests.support.live_clients import Pipeline, wait_until

SNAKEFILE = b"""\
include: "rules/make.smk"

rule all:
    input: "out/b.txt"

rule b:
    input: "out/a.txt"
    output: "out/b.txt"
    params: sleep=config.get("sleep", 0)
    shell:
        "if [ ! -e slept ]; then touch slept; sleep {params.sleep}; fi; "
        "cat {input} > {output}; echo b >> {output}"
"""
RULES = b"""\
rule a:
    output: "out/a.txt"
    shell: "echo a > {output}"
"""
BUNDLE = [("Snakefile", SNAKEFILE), ("rules/make.smk", RULES)]
MAX_BYTES = 64 * 1024
MAX_FILES = 5


def attached(files: list[tuple[str, bytes]], **fields: Any) -> list[tuple[str, Any]]:
    """The form's text fields plus one ``workflow_attachment`` part per file."""
    fields.setdefault("workflow_url", "Snakefile")
    parts: list[tuple[str, Any]] = list(form(**fields).items())
    parts += [("workflow_attachment", (name, data)) for name, data in files]
    return parts


@pytest.fixture
def pipeline(settings_factory) -> Iterator[Pipeline]:
    p = Pipeline(
        settings_factory(
            backend="sqlite",
            cores=2,
            cancel_grace=5.0,
            allow_attachments=True,
            attachment_max_bytes=MAX_BYTES,
            attachment_max_files=MAX_FILES,
        )
    )
    try:
        yield p.start(runner=True)
    finally:
        p.stop()


def state_of(wes: Client, run_id: str) -> str:
    return wes.ok("GET", f"/runs/{run_id}/status")["state"]


def test_an_attached_workflow_runs_to_complete_with_its_tasks(pipeline: Pipeline) -> None:
    wes = Client(pipeline.url)
    info = wes.ok("GET", "/service-info")
    assert info["tags"]["workflow_attachment"].startswith("accepted")
    run_id = wes.ok("POST", "/runs", files=attached(BUNDLE, tags={"kind": "private"}))["run_id"]
    wait_until(lambda: state_of(wes, run_id) in TERMINAL, 240, "the attached run to end")
    assert state_of(wes, run_id) == "COMPLETE"

    tasks = wes.ok("GET", f"/runs/{run_id}/tasks")["task_logs"]
    assert sorted(t["name"] for t in tasks) == ["a", "all", "b"]
    assert all(t["exit_code"] == 0 for t in tasks)
    run_log = wes.ok("GET", f"/runs/{run_id}")
    assert run_log["request"]["workflow_url"] == "Snakefile"
    assert run_log["request"]["tags"] == {"kind": "private"}

    doc = requests.get(f"{pipeline.url}/api/v1/runs/{run_id}", timeout=30).json()
    assert doc["workflow"] == "attachment" and doc["workflow_source"] == "attachment"
    bundle = doc["workflow_bundle"]
    assert bundle["entry"] == "Snakefile"
    assert sorted(f["path"] for f in bundle["files"]) == ["Snakefile", "rules/make.smk"]
    assert str(pipeline.settings.data_dir.resolve()) not in json.dumps(doc)  # no server path
    # Snakemake ran the run's own copy, fetched from the store into its run directory.
    rd = pipeline.settings.runs_dir / run_id
    assert (rd / "workflow" / "rules" / "make.smk").read_bytes() == RULES
    assert (rd / "work" / "out" / "b.txt").read_text() == "a\nb\n"
    rerun = requests.post(f"{pipeline.url}/api/v1/runs/{run_id}/rerun", timeout=30)
    assert rerun.status_code == 409 and "attachment" in rerun.json()["detail"]


def test_bad_bundles_are_refused_before_anything_runs(pipeline: Pipeline) -> None:
    wes = Client(pipeline.url)

    def refused(files: list[tuple[str, bytes]], **fields: Any) -> str:
        return wes.error(400, "POST", "/runs", files=attached(files, **fields))

    # (a backslash is an escape inside a quoted filename on the wire; the name checks'
    # refusal of a decoded one is in tests/unit/test_bundles.py)
    for bad, why in [
        ("../x", "'..' segment"),
        ("/etc/x", "absolute path"),
        ("a/../../b", "'..' segment"),
        ("C:/x", "absolute path"),
        ("a//b", "empty"),
    ]:
        msg = refused([*BUNDLE, (bad, b"x")])
        assert bad in msg and why in msg, msg
    assert "more than once" in refused([*BUNDLE, ("Snakefile", b"rule x:\n")])
    assert "names no attached file" in refused(BUNDLE, workflow_url="main.smk")
    assert "names no attached file" in refused([("rules/make.smk", RULES)])  # no Snakefile
    assert "URL" in refused(BUNDLE, workflow_url="https://example.org/Snakefile")
    big = refused([*BUNDLE, ("data.bin", b"0" * (MAX_BYTES + 1))])
    assert str(MAX_BYTES) in big and "SNAKEDECK_ATTACHMENT_MAX_BYTES" in big
    many = refused([*BUNDLE, *[(f"f{i}.txt", b"x") for i in range(MAX_FILES)]])
    assert f"at most {MAX_FILES}" in many and "SNAKEDECK_ATTACHMENT_MAX_FILES" in many
    broken = refused([*BUNDLE, ("workflow.yaml", b"name: [")])
    assert broken.startswith("workflow_attachment: workflow.yaml: not valid YAML"), broken
    assert "/tmp" not in broken and str(pipeline.settings.data_dir) not in broken
    assert "no input named 'reads'" in refused(BUNDLE, workflow_params={"inputs": {"reads": "f_1"}})
    assert wes.ok("GET", "/runs")["runs"] == []  # none of them became a run


def test_a_cancelled_attached_run_resumes_from_its_own_copy(pipeline: Pipeline) -> None:
    wes = Client(pipeline.url)
    run_id = wes.ok("POST", "/runs", files=attached(BUNDLE, workflow_params={"sleep": 60}))[
        "run_id"
    ]

    def b_running() -> bool:
        tasks = wes.ok("GET", f"/runs/{run_id}/tasks")["task_logs"]
        return any(t["name"] == "b" and "state: running" in t["system_logs"] for t in tasks)

    wait_until(b_running, 120, "rule b to run")
    assert wes.ok("POST", f"/runs/{run_id}/cancel") == {"run_id": run_id}
    wait_until(lambda: state_of(wes, run_id) == "CANCELED", 120, "the run to be cancelled")

    resumed = requests.post(f"{pipeline.url}/api/v1/runs/{run_id}/resume", timeout=30)
    assert resumed.status_code == 202, resumed.text
    wait_until(lambda: state_of(wes, run_id) in TERMINAL - {"CANCELED"}, 240, "the resume")
    assert state_of(wes, run_id) == "COMPLETE"
    doc = requests.get(f"{pipeline.url}/api/v1/runs/{run_id}", timeout=30).json()
    assert doc["attempt"] == 2
    tasks = wes.ok("GET", f"/runs/{run_id}/tasks")["task_logs"]
    assert {t["name"] for t in tasks} >= {"a", "b", "all"}
    work = pipeline.settings.runs_dir / run_id / "work"
    assert (work / "out" / "b.txt").read_text() == "a\nb\n"


def test_a_runner_that_does_not_allow_attachments_refuses_the_run(settings_factory) -> None:
    from runner.service import Runner

    settings = settings_factory(backend="sqlite", cores=1, allow_attachments=True)
    p = Pipeline(settings)
    try:
        p.start()
        p.runner = Runner(settings.with_(allow_attachments=False), open_bus(settings), p.store)
        p.runner.start()
        wes = Client(p.url)
        run_id = wes.ok("POST", "/runs", files=attached(BUNDLE))["run_id"]
        wait_until(lambda: state_of(wes, run_id) in TERMINAL, 120, "the runner to refuse it")
        assert state_of(wes, run_id) == "SYSTEM_ERROR"
        reason = wes.ok("GET", f"/runs/{run_id}")["run_log"]["system_logs"][0]
        assert "SNAKEDECK_ALLOW_ATTACHMENTS" in reason, reason
        assert not (settings.runs_dir / run_id / "workflow").exists()
    finally:
        p.stop()


@pytest.fixture
def settings(settings_factory, store_backend: str) -> Settings:
    """For the store, bus and consumer of ``tests/integration/conftest.py``."""
    return settings_factory(backend=store_backend, bus="amqp", cores=1, allow_attachments=True)


def test_a_restarted_runner_recovers_a_private_run_from_its_own_copy(
    settings: Settings, store: Store, bus: Bus, consumer: Any
) -> None:
    """A runner died while a private run's Snakemake ran; that Snakemake finished meanwhile.
    The restarted runner (same identity) judges the run from its exit status and stores the
    results its bundle's ``workflow.yaml`` declares: the run's own workflow, not the registry
    (which has no such workflow), found again on recovery."""
    from runner.bundle import stage_bundle
    from runner.service import Runner

    run_id, runner_id = f"crash-private-{os.urandom(4).hex()}", "crashed-runner"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "runner-0.id").write_text(runner_id + "\n")
    definition = b"results: [{path: out/b.txt, kind: text}]\n"
    files = [*BUNDLE, ("workflow.yaml", definition)]
    bundle = {
        "source": "attachment",
        "entry": "Snakefile",
        "files": [
            {"path": p, "sha256": store.put_blob(io.BytesIO(d)).sha256, "size": len(d)}
            for p, d in files
        ],
    }
    run = projection.new_run(run_id)
    run.update(workflow="attachment", workflow_source="attachment", workflow_bundle=bundle,
               config={}, submitted_at=envelope.now_iso())  # fmt: skip
    store.create_run(run)
    claim = store.claim_run(run_id, runner_id, host="h", now=time.time())
    rd = run_dir(settings.runs_dir, run_id).create()
    stage_bundle(store, rd, bundle, settings)  # what the runner had fetched before it died
    with open(rd.spool, "w") as f:
        for state in ("INITIALIZING", "RUNNING"):
            event = envelope.run_state(run_id, state)
            event["data"]["epoch"] = claim.claim.epoch
            f.write(envelope.dumps(event) + "\n")
        f.write(envelope.dumps(envelope.make(run_id, "workflow_started", data={})) + "\n")
    exit_status.write(rd.exit_status, 0)
    (rd.work / "out").mkdir(parents=True)
    (rd.work / "out" / "b.txt").write_text("a\nb\n")

    runner_bus = open_bus(settings)
    runner = Runner(settings, runner_bus, store)
    runner.start()
    try:
        assert runner.runner_id == runner_id
        wait_until(lambda: (store.get_run(run_id) or {}).get("state") == "COMPLETE", 60, "recovery")
        wait_until(lambda: store.get_output(run_id, "out/b.txt"), 60, "its declared result")
        assert store.get_output(run_id, "out/b.txt")["size"] == 4
    finally:
        runner.stop()
        runner_bus.close()
