"""`snakedeck standalone` from a clean directory, then `snakedeck submit demo --follow`.

The two commands a new user types: the first starts everything in one process (in-process
bus, SQLite), the second must show the run to the end and exit 0 only when it is COMPLETE.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SNAKEDECK = [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"standalone exited early:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still loading the app
            pass
        time.sleep(0.3)
    pytest.fail(f"standalone did not become ready within {timeout:.0f} s")


Server = tuple[str, dict[str, str], subprocess.Popen]
"""URL, the environment that reaches it, and the process (its output: ``standalone.log``)."""


@contextlib.contextmanager
def running_standalone(cwd: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`snakedeck standalone` started in ``cwd`` on a free port, stopped (never left behind)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")} | {
        "SNAKEDECK_PORT": str(port),
        "SNAKEDECK_WORKFLOWS_DIR": str(REPO / "workflows"),
        **(extra_env or {}),
    }
    log = cwd / "standalone.log"
    with log.open("w") as output:  # a file, not a pipe: a pipe nobody reads fills and blocks
        proc = subprocess.Popen(
            [*SNAKEDECK, "standalone"],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so the gunicorn worker can be killed with its master
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
    except BaseException:
        kill_group(proc)  # never leave a server behind a failed setup
        raise
    try:
        yield url, env, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            kill_group(proc)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Server]:
    with running_standalone(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def shared_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the CLI tests below that only add runs of their own."""
    with running_standalone(tmp_path_factory.mktemp("cli")) as server:
        yield server


def test_submit_demo_follow_completes_and_exits_0(standalone, tmp_path: Path) -> None:
    url, env, _ = standalone
    result = subprocess.run(
        [*SNAKEDECK, "submit", "demo", "--follow", "--set", "samples=3", "--tag", "who=test"],
        cwd=tmp_path,
        env=env | {"SNAKEDECK_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "COMPLETE" in result.stdout
    runs = requests.get(f"{url}/api/v1/runs", params={"tag": "who=test"}, timeout=5).json()
    assert runs["total"] == 1
    run = runs["runs"][0]
    assert run["state"] == "COMPLETE"
    assert run["progress"]["done"] == run["progress"]["total"] > 0
    # Standalone keeps its data under ./.snakedeck of the directory it was started in.
    assert (tmp_path / ".snakedeck" / "snakedeck.db").is_file()


def test_follow_of_a_failing_run_exits_1_and_names_the_failed_job(standalone, tmp_path) -> None:
    url, env, _ = standalone
    result = subprocess.run(
        [*SNAKEDECK, "submit", "demo", "--follow", "--set", "samples=2", "--set", "fail_sample=s1"],
        cwd=tmp_path,
        env=env | {"SNAKEDECK_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "EXECUTOR_ERROR" in result.stdout
    # Why it failed, first: the exit status and what the job wrote to its stderr.
    assert "(make_sample) failed: CalledProcessError" in result.stderr
    assert "non-zero exit status 3" in result.stderr
    assert "  ERROR: sample s1 is configured to fail (fail_sample)" in result.stderr


def test_standalone_prints_where_to_find_it(standalone, tmp_path: Path) -> None:
    url, _, proc = standalone
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    out = (tmp_path / "standalone.log").read_text()
    assert f"{url}/dashboard/" in out and f"{url}/api/v1" in out


def test_server_start_imports_no_ssl_before_gevent_patches_it() -> None:
    """gunicorn's gevent worker patches ssl; an earlier import (e.g. via requests) breaks it."""
    probe = (
        "import sys, cli.main as c, cli.processes as p\n"
        "p.main = lambda role, settings: print('ssl' in sys.modules) or 0\n"
        "sys.exit(c.main(['standalone']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr


# -- the CLI as a new user meets it -------------------------------------------------------------
NOISE = ("Traceback", "CalledProcessError", "SIGTERM")
"""What a user must not see when a run was cancelled: tracebacks, or Snakemake's exception
text for the jobs the cancel killed."""


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def snakedeck(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI against ``server``; its output without terminal escapes (``TTY_COMPATIBLE=1``
    makes rich draw as on a terminal), as a user reads it."""
    url, base, _ = server
    result = subprocess.run(
        [*SNAKEDECK, *args],
        env=base | {"SNAKEDECK_URL": url} | env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    result.stdout, result.stderr = ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)
    return result


def submit(url: str, tag: str, **config: object) -> str:
    resp = requests.post(
        f"{url}/api/v1/runs",
        json={"workflow": "demo", "config": config, "tags": {"test": tag}},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def get_run(url: str, run_id: str) -> dict:
    return requests.get(f"{url}/api/v1/runs/{run_id}", timeout=30).json()


def running_with_jobs(url: str, tag: str) -> str:
    """A run whose jobs are running (and would run for long): one to cancel."""
    run_id = submit(url, tag, samples=2, sleep=30)
    wait_for(
        lambda: (get_run(url, run_id).get("progress") or {}).get("running"),
        120,
        f"run {run_id} to start its jobs",
    )
    return run_id


def cancel(url: str, run_id: str) -> None:
    resp = requests.post(f"{url}/api/v1/runs/{run_id}/cancel", timeout=30)
    assert resp.status_code == 202, resp.text


def test_runs_prints_whole_run_ids_in_a_narrow_terminal(shared_standalone) -> None:
    url = shared_standalone[0]
    ids = {submit(url, "narrow", samples=1) for _ in range(2)}
    result = snakedeck(shared_standalone, "runs", "--tag", "test=narrow", COLUMNS="60")
    assert result.returncode == 0, result.stderr
    for run_id in ids:
        assert run_id in result.stdout, result.stdout
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 60


@pytest.mark.parametrize(
    ("run_id", "detail"),
    [
        ("../workflows", "not found"),  # unquoted, this reached GET /api/v1/workflows
        ("..", "'..' is not a run id"),
        ("a/b", "not found"),
    ],
)
def test_status_sends_the_run_id_as_one_path_segment(
    shared_standalone, run_id: str, detail: str
) -> None:
    result = snakedeck(shared_standalone, "status", run_id)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "(404)" in result.stderr and detail in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("tty", ["0", "1"], ids=["plain", "live"])
def test_watch_of_a_missing_run_exits_2_with_the_gateways_message(
    shared_standalone, tty: str
) -> None:
    result = snakedeck(shared_standalone, "watch", "01m8svf62qzgsyqs7z", TTY_COMPATIBLE=tty)
    assert result.returncode == 2
    assert "no run with id '01m8svf62qzgsyqs7z'" in result.stderr
    assert result.stdout == ""  # no live view was started for it


def test_watch_of_a_cancelled_run_prints_a_summary_and_exits_1(shared_standalone) -> None:
    url = shared_standalone[0]
    run_id = running_with_jobs(url, "cancelled")
    cancel(url, run_id)
    wait_for(lambda: get_run(url, run_id)["state"] == "CANCELED", 120, "the cancel")
    for tty in ("0", "1"):
        result = snakedeck(shared_standalone, "watch", run_id, TTY_COMPATIBLE=tty)
        assert result.returncode == 1, result.stdout + result.stderr
        output = result.stdout + result.stderr
        assert f"run {run_id} ended CANCELED" in result.stdout
        assert "2 cancelled" in result.stdout  # the jobs the cancel stopped, named apart
        for noise in NOISE:
            assert noise not in output, output


@pytest.mark.parametrize("tty", ["0", "1"], ids=["plain", "live"])
def test_watch_while_a_run_is_cancelled_ends_clean_with_exit_1(
    shared_standalone, tmp_path: Path, tty: str
) -> None:
    url, env, _ = shared_standalone
    run_id = running_with_jobs(url, f"watched-{tty}")
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        watch = subprocess.Popen(
            [*SNAKEDECK, "watch", run_id],
            env=env | {"SNAKEDECK_URL": url, "TTY_COMPATIBLE": tty},
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for(lambda: out.read_text(), 60, "watch to show the run")
        cancel(url, run_id)
        assert watch.wait(120) == 1, out.read_text() + err.read_text()
    finally:
        if watch.poll() is None:
            watch.kill()
    output = ANSI.sub("", out.read_text() + err.read_text())
    assert f"run {run_id} ended CANCELED" in output or f"{run_id} CANCELED" in output
    for noise in NOISE:
        assert noise not in output, output


def test_demo_script_refuses_a_port_another_server_holds(tmp_path: Path) -> None:
    """It must neither start nor submit anything: the other server would take the demo run."""
    requests_seen: list[tuple[str, str]] = []

    class Impostor(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:  # "ready", "accepted": the worst a stranger could say
            requests_seen.append((self.command, self.path))
            body = b'{"status": "ready", "run_id": "someone-elses", "state": "COMPLETE"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *_: object) -> None:
            pass

    holder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    port = holder.server_address[1]
    threading.Thread(target=holder.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    try:
        result = subprocess.run(
            [str(REPO / "scripts" / "demo")],
            env=env | {"SNAKEDECK_PORT": str(port), "SNAKEDECK_DATA_DIR": str(tmp_path / "d")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.shutdown()
        holder.server_close()
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use by another program" in result.stderr
    assert "bootstrap" not in result.stdout + result.stderr  # refused before setting up
    assert [seen for seen in requests_seen if seen[0] == "POST"] == []
    assert requests_seen == []  # not even a readiness poll reached it
