"""`snakedeck status`, `logs`, `outputs` and `resume` against a real `snakedeck standalone`:
what a user types to learn why a run failed and to get its results."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_standalone import SNAKEDECK, Server, running_standalone
from tests.support.rest import TERMINAL
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    home = tmp_path_factory.mktemp("artefacts-cli")
    with running_standalone(home) as running:
        yield running, home


def cli(server: tuple[Server, Path], *args: str, cwd: Path | None = None):
    (url, env, _), home = server
    return subprocess.run(
        [*SNAKEDECK, *args],
        cwd=cwd or home,
        env=env | {"SNAKEDECK_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
    )


def ended(server: tuple[Server, Path], config: dict) -> dict:
    (url, _, _), _ = server
    resp = requests.post(f"{url}/api/v1/runs", json={"workflow": "demo", "config": config},
                         timeout=30)  # fmt: skip
    run_id = resp.json()["run_id"]
    wait_for(
        lambda: requests.get(f"{url}/api/v1/runs/{run_id}", timeout=10).json()["state"] in TERMINAL,
        180,
        f"run {run_id} to end",
    )
    return requests.get(f"{url}/api/v1/runs/{run_id}", timeout=10).json()


def test_status_and_logs_say_why_a_job_failed_first(server) -> None:
    run = ended(server, {"samples": 2, "fail_sample": "s2"})
    run_id = run["run_id"]
    assert run["state"] == "EXECUTOR_ERROR"
    status = cli(server, "status", run_id)
    assert status.returncode == 0, status.stderr
    out = status.stdout
    why = out.index("ERROR: sample s2 is configured to fail (fail_sample)")
    assert "(make_sample) failed: CalledProcessError" in out
    assert why < out.index("pending")  # before the per-rule table
    assert f"snakedeck logs {run_id} --job" in out

    log = cli(server, "logs", run_id)
    assert log.returncode == 0, log.stderr
    assert "Error in rule make_sample:" in log.stdout and "Building DAG of jobs" in log.stdout
    jobid = out.split(f"snakedeck logs {run_id} --job ", 1)[1].split()[0]
    job_log = cli(server, "logs", run_id, "--job", jobid)
    assert job_log.returncode == 0, job_log.stderr
    assert "==> logs/make_sample/s2.log <==" in job_log.stdout
    assert "make_sample s2: start" in job_log.stdout
    followed = cli(server, "logs", run_id, "-f")  # an ended run: prints all, then stops
    assert followed.returncode == 0 and followed.stdout == log.stdout
    tail = cli(server, "logs", run_id, "--tail", "200")
    assert tail.returncode == 0 and log.stdout.endswith(tail.stdout) and len(tail.stdout) <= 200
    missing = cli(server, "logs", run_id, "--job", "999")
    assert missing.returncode == 2 and "no job 999" in missing.stderr


def test_outputs_download_byte_for_byte_and_a_complete_run_is_not_resumed(
    server, tmp_path: Path
) -> None:
    run = ended(server, {"samples": 2})
    run_id = run["run_id"]
    assert run["state"] == "COMPLETE"
    listing = cli(server, "outputs", run_id)
    assert listing.returncode == 0, listing.stderr
    assert "summary.tsv" in listing.stdout and "report" in listing.stdout
    target = tmp_path / "results"
    got = cli(server, "outputs", run_id, "-o", str(target))
    assert got.returncode == 0, got.stderr
    _, home = server
    work = home / ".snakedeck" / "runs" / run_id / "work"
    for rel in ("summary.tsv", "counts/s1.tsv", "samples/s2.txt"):
        assert (target / rel).read_bytes() == (work / rel).read_bytes(), rel
    assert "<html" in (target / "snakemake_report.html").read_text()[:2000].lower()
    refused = cli(server, "resume", run_id)
    assert refused.returncode == 2 and "nothing left to do" in refused.stderr


def test_watch_shows_the_log_as_it_grows_and_an_estimate(server) -> None:
    ended(server, {"samples": 4, "sleep": 1.0})  # earlier timings of the same workflow
    (url, _, _), _ = server
    resp = requests.post(
        f"{url}/api/v1/runs", json={"workflow": "demo", "config": {"samples": 4, "sleep": 3}},
        timeout=30,
    )  # fmt: skip
    run_id = resp.json()["run_id"]
    watched = cli(server, "watch", run_id, "--log")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    out = watched.stdout
    assert "Building DAG of jobs" in out and "Finished jobid" in out
    printed = [line for line in out.splitlines() if not line.startswith(f"{run_id} ")]
    stored = cli(server, "logs", run_id).stdout.splitlines()
    assert printed == stored  # what was stored before, then live: every line once, in order
    assert "left (estimate)" in out
    assert out.rstrip().splitlines()[-1].startswith(f"{run_id} COMPLETE")
