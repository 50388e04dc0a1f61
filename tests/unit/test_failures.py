"""Failure text from what Snakemake printed: logs captured from real Snakemake 9 runs (a
serial run and a run of four jobs at once) are attributed to the jobs that printed them."""

from __future__ import annotations

from pathlib import Path

from runner.failures import MAX_LINES, LogAttributor, exception_message

DATA = Path(__file__).parent / "data"


def attributed(name: str, commands: dict[str, str], chunk: int = 0) -> LogAttributor:
    lines = (DATA / name).read_text().splitlines(keepends=True)
    attributor = LogAttributor(commands.get)
    if chunk:  # as the shipper feeds it: whatever arrived since the last read
        for start in range(0, len(lines), chunk):
            attributor.feed(lines[start : start + chunk])
    else:
        attributor.feed(lines)
    attributor.flush()
    return attributor


SERIAL = {
    "1": "echo 'this goes to stderr from fail_shell' >&2; echo 'stdout line'; exit 3",
    "3": "sleep 0.5; echo ok > c.txt",
}


def test_a_shell_jobs_stderr_and_exception_are_its_failure_text() -> None:
    for chunk in (0, 1, 7):
        failure = attributed("snakemake_failures.log", SERIAL, chunk).failure("1", 0)
        assert failure is not None and failure.rule == "fail_shell"
        assert failure.text.splitlines() == [
            "this goes to stderr from fail_shell",
            "stdout line",
            "RuleException:",
            'CalledProcessError in file "/tmp/art-exp/wf/Snakefile", line 6:',
            "Command 'set -euo pipefail;  echo 'this goes to stderr from fail_shell' >&2; "
            "echo 'stdout line'; exit 3' returned non-zero exit status 3.",
        ]
        assert not failure.shared and not failure.truncated


def test_a_run_block_without_log_gets_its_traceback() -> None:
    attributor = attributed("snakemake_failures.log", SERIAL)
    failure = attributor.failure("2", 0)
    assert failure is not None and failure.rule == "fail_run"
    assert "No module named 'nonexistent_module_xyz'" in failure.text
    assert "line 11, in __rule_fail_run" in failure.text
    assert "Exiting because" not in failure.text  # the subprocess's bookkeeping is left out
    assert exception_message(failure.lines) == (
        "ModuleNotFoundError: No module named 'nonexistent_module_xyz'"
    )
    assert attributor.failure("3", 0) is None and attributor.failure("2", 1) is None
    assert attributor.open == {}


PARALLEL = {
    "1": "sleep 1; echo 'stderr of fail_shell' >&2; sleep 1; exit 3",
    "3": "echo 'stderr of ok' >&2; sleep 0.5; echo ok > c.txt",
    "4": "sleep 1.5; kill -9 $$",
}


def test_jobs_running_at_once_get_their_own_exceptions_and_share_raw_lines() -> None:
    attributor = attributed("snakemake_parallel.log", PARALLEL, chunk=3)
    shell = attributor.failure("1", 0)
    run = attributor.failure("2", 0)
    killed = attributor.failure("4", 0)
    assert shell is not None and run is not None and killed is not None
    assert "stderr of fail_shell" in shell.text and shell.shared
    assert "returned non-zero exit status 3." in shell.text
    assert "ValueError" not in shell.text and "SIGKILL" not in shell.text
    assert "bad value in run block" in run.text and "exit status 3" not in run.text
    assert exception_message(run.lines) == "ValueError: bad value in run block"
    assert "died with <Signals.SIGKILL: 9>." in killed.text
    assert "ValueError" not in killed.text and "exit status 3" not in killed.text
    assert "stderr of ok" not in shell.text.split("RuleException")[-1]


def test_text_is_bounded_to_the_last_lines() -> None:
    attributor = LogAttributor()
    attributor.feed(["[Tue Dec  1 23:10:58 2026]", "localrule big:", "    jobid: 7"])
    attributor.feed(f"line {i}" for i in range(MAX_LINES + 50))
    attributor.feed(["[Tue Dec  1 23:11:58 2026]", "Error in rule big:", "    jobid: 7"])
    attributor.flush()
    failure = attributor.failure("7", 0)
    assert failure is not None and failure.truncated
    lines = failure.text.splitlines()
    assert len(lines) == MAX_LINES and lines[-1] == f"line {MAX_LINES + 49}"
