"""`snakedeck standalone` from a clean directory, then `snakedeck submit demo --follow`.

The two commands a new user types: the first starts everything in one process (in-process
bus, SQLite), the second must show the run to the end and exit 0 only when it is COMPLETE.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SNAKEDECK = [sys.executable, "-m", "snakedeck.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"standalone exited early:\n{proc.stdout.read()}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still loading the app
            pass
        time.sleep(0.3)
    pytest.fail(f"standalone did not become ready within {timeout:.0f} s")


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")} | {
        "SNAKEDECK_PORT": str(port),
        "SNAKEDECK_WORKFLOWS_DIR": str(REPO / "workflows"),
    }
    proc = subprocess.Popen(
        [*SNAKEDECK, "standalone"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the gunicorn worker can be killed with its master
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
    except BaseException:
        kill_group(proc)  # never leave a server behind a failed setup
        raise
    yield url, env, proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        kill_group(proc)


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
    assert "failed; log:" in result.stderr


def test_standalone_prints_where_to_find_it(standalone) -> None:
    url, _, proc = standalone
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=20)[0]
    assert f"{url}/dashboard/" in out and f"{url}/api/v1" in out


def test_server_start_imports_no_ssl_before_gevent_patches_it() -> None:
    """gunicorn's gevent worker patches ssl; an earlier import (e.g. via requests) breaks it."""
    probe = (
        "import sys, snakedeck.cli as c, snakedeck.processes as p\n"
        "p.main = lambda role, settings: print('ssl' in sys.modules) or 0\n"
        "sys.exit(c.main(['standalone']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr
