"""The CLI's own input handling: config building, clear errors and exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from cli import main as cli
from cli import terminal
from snakedeck.client import segment


def test_set_values_parse_as_yaml_scalars_and_nest() -> None:
    config = cli.build_config(None, ["samples=3", "sleep=0.5", "name=x", "a.b=true", "empty="])
    assert config == {"samples": 3, "sleep": 0.5, "name": "x", "a": {"b": True}, "empty": ""}


def test_set_overrides_config_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("samples: 2\ngreeting: hi\n")
    assert cli.build_config(f, ["samples=5"]) == {"samples": 5, "greeting": "hi"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("- a\n- b\n", "must hold a mapping"), ("a: [unclosed\n", "not valid YAML")],
)
def test_bad_config_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(content)
    with pytest.raises(cli.UsageError, match=message):
        cli.build_config(f, [])


def test_missing_config_file_exits_2_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    code = cli.main(
        ["submit", "demo", "--config-file", str(missing), "--url", "http://127.0.0.1:9"]
    )
    assert code == cli.EXIT_USAGE
    assert str(missing) in capsys.readouterr().err


def test_malformed_pair_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["submit", "demo", "--set", "novalue", "--url", "http://127.0.0.1:9"])
    assert code == cli.EXIT_USAGE
    assert "'novalue' must look like KEY=VALUE" in capsys.readouterr().err


def test_unreachable_gateway_exits_3_and_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["runs", "--url", "http://127.0.0.1:9"])
    assert code == cli.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9" in err and "snakedeck standalone" in err


def test_replay_of_missing_spool_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", str(tmp_path / "x.jsonl")]) == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


# -- what the terminal shows --------------------------------------------------------------------
RUN_ID = "01m8svf62qzgsyqs7s"


def rendered(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def listed_runs(width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    runs = [
        {
            "run_id": RUN_ID,
            "workflow": "a-workflow-with-a-long-name",
            "state": "EXECUTOR_ERROR",
            "progress": {"total": 8, "done": 3, "failed": 1, "not_run": 4},
            "submitted_at": "2026-12-01T22:26:40.123Z",
            "tags": {"project": "x", "who": "someone"},
        },
        {"run_id": "01m8svt9wjc2a8p3fg", "state": "QUEUED", "progress": {}},
    ]
    terminal.print_runs(console, runs)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [12, 30, 40, 60, 80, 200])
def test_runs_list_prints_every_id_and_state_whole_at_any_width(width: int) -> None:
    out = listed_runs(width)
    for whole in (RUN_ID, "01m8svt9wjc2a8p3fg", "EXECUTOR_ERROR", "QUEUED"):
        assert whole in out, out
    assert "…" not in out


def test_runs_list_shows_every_column_when_there_is_room() -> None:
    out = listed_runs(200)
    assert "3/8 done, 1 failed, 4 not run" in out
    assert "a-workflow-with-a-long-name" in out and "2026-12-01 22:26" in out
    assert "project=x, who=someone" in out


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        ({}, "0/0 done"),
        ({"total": 8, "done": 8}, "8/8 done"),
        ({"total": 8, "done": 3, "failed": 1, "not_run": 4}, "3/8 done, 1 failed, 4 not run"),
        ({"total": 8, "cancelled": 2, "not_run": 6}, "0/8 done, 2 cancelled, 6 not run"),
        ({"total": 5, "done": 1, "running": 2, "pending": 2}, "1/5 done, 2 running"),
    ],
)
def test_progress_names_each_outcome_apart(progress: dict, text: str) -> None:
    assert terminal.progress_text(progress) == text


def test_the_bar_fills_with_finished_jobs_and_its_label_counts_the_done_ones() -> None:
    run = {
        "state": "CANCELED",
        "progress": {"total": 8, "done": 1, "failed": 1, "cancelled": 2, "not_run": 4},
    }
    fields = terminal.bar_fields(run)
    assert (fields["completed"], fields["total"]) == (8, 8)
    assert fields["label"] == "1/8 done, 1 failed, 2 cancelled, 4 not run"
    assert terminal.bar_fields({"state": "QUEUED"})["total"] is None  # unknown yet: a pulse


def rule_rows(run: dict) -> list[list[str]]:
    return [line.split() for line in rendered(terminal.rule_table(run)).splitlines()[1:]]


def test_rules_are_listed_in_pipeline_order_with_not_run_apart() -> None:
    counts = {"done": 0, "failed": 0, "cancelled": 0, "running": 0, "pending": 0}
    run = {
        "rule_order": ["make_sample", "count", "summarize", "all"],
        "rule_counts": {
            "all": counts | {"not_run": 1},
            "count": counts | {"done": 2, "not_run": 1},
            "make_sample": counts | {"done": 2, "failed": 1},
            "summarize": counts | {"not_run": 1},
        },
    }
    rows = rule_rows(run)
    assert [row[0] for row in rows] == ["make_sample", "count", "summarize", "all"]
    header = rendered(terminal.rule_table(run)).splitlines()[0]
    assert header.split() == [
        "rule",
        "pending",
        "running",
        "done",
        "failed",
        "cancelled",
        "not",
        "run",
    ]
    assert rows[0][1:] == ["0", "0", "2", "1", "0", "0"]
    assert rows[1][1:] == ["0", "0", "2", "0", "0", "1"]
    # Without an order (an old run document), the document's own order is kept.
    del run["rule_order"]
    assert [row[0] for row in rule_rows(run)] == ["all", "count", "make_sample", "summarize"]


JOB_ERROR = {
    "type": "job_error",
    "msg": "Error in rule make_sample, jobid: 3",
    "data": {"rule_name": "make_sample", "jobid": 3, "log": ["logs/make_sample/s1.log"]},
}


@pytest.mark.parametrize(
    ("log", "named"),
    [
        (["logs/a.log", "logs/b.log"], "logs/a.log, logs/b.log"),
        ({"out": "logs/out.log", "err": "logs/err.log"}, "logs/out.log, logs/err.log"),
        ("logs/one.log", "logs/one.log"),
        ([], "no log file"),
        (None, "no log file"),
    ],
)
def test_a_failed_job_is_named_with_its_rule_and_log_files(log: object, named: str) -> None:
    event = JOB_ERROR | {"data": JOB_ERROR["data"] | {"log": log}}
    assert terminal.describe_failure(event) == f"job 3 (make_sample) failed; log: {named}"


def test_snakemake_errors_are_cut_to_their_first_lines() -> None:
    rule_error = {
        "type": "error",
        "msg": 'RuleException:\nCalledProcessError in file "Snakefile", line 32:\n'
        "Command 'set -euo pipefail;\n  sleep 5\n' died with <Signals.SIGTERM: 15>.",
        "data": {"exception": "RuleException"},
    }
    text = terminal.describe_failure(rule_error)
    assert text == (
        'error: RuleException: CalledProcessError in file "Snakefile", line 32: (+3 more lines)'
    )
    workflow_error = {
        "type": "error",
        "msg": "WorkflowError:\nAt least one job did not complete successfully.",
        "data": {"exception": "WorkflowError"},
    }
    assert terminal.describe_failure(workflow_error) == (
        "error: WorkflowError: At least one job did not complete successfully."
    )
    assert terminal.describe_failure({"type": "log", "msg": "Building DAG of jobs..."}) is None


FAILURE = {
    "type": "job_failure",
    "data": {
        "jobid": 3,
        "rule": "make_sample",
        "exit_code": 3,
        "message": "CalledProcessError: the command returned non-zero exit status 3",
        "text": "ERROR: sample s3 is configured to fail\nRuleException:",
        "logs": [{"path": "logs/s3.log", "tail": "make_sample s3: start"}],
    },
}


def test_a_runners_failure_is_shown_once_with_why_and_a_cancels_echo_not_at_all() -> None:
    feed = terminal.FailureFeed({"state": "RUNNING"})
    assert feed.describe(JOB_ERROR) is None  # the runner follows it with the job's failure
    text = feed.describe(FAILURE) or ""
    lines = text.splitlines()
    assert lines[0] == (
        "job 3 (make_sample) failed: CalledProcessError: the command returned non-zero exit "
        "status 3"
    )
    assert "  ERROR: sample s3 is configured to fail" in lines
    assert "  log logs/s3.log:" in lines and "    make_sample s3: start" in lines
    feed.describe({"type": "run_state", "data": {"state": "CANCELING"}})
    assert feed.describe(FAILURE) is None


def test_errors_a_cancel_causes_are_not_reported_as_failures() -> None:
    feed = terminal.FailureFeed({"state": "RUNNING", "hand_run": True})
    killed = {"type": "error", "msg": "RuleException:\n… died with <Signals.SIGTERM: 15>."}
    assert feed.describe(JOB_ERROR) is not None  # a hand run has no runner to explain it
    assert feed.describe(killed) is not None
    feed.describe({"type": "run_state", "data": {"state": "CANCELING"}})
    assert feed.describe(killed) is None
    assert (
        terminal.FailureFeed({"state": "RUNNING", "cancel_requested": True}).describe(killed)
        is None
    )


def test_text_from_a_run_is_printed_as_it_is_never_as_markup() -> None:
    event = JOB_ERROR | {"data": JOB_ERROR["data"] | {"log": ["[/tmp]/x.log", "[bold]y"]}}
    line = Text.assemble(("✗ ", "red"), terminal.describe_failure(event) or "")
    assert "log: [/tmp]/x.log, [bold]y" in rendered(line)
    run = {"run_id": RUN_ID, "state": "RUNNING", "state_reason": "[/x] odd", "rule_counts": {}}
    assert "reason: [/x] odd" in rendered(terminal.run_header(run))


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("../x", "..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a/b?c#d e", "a%2Fb%3Fc%23d%20e"),
        ("01m8svf62qzgsyqs7s", "01m8svf62qzgsyqs7s"),
        (7, "7"),
    ],
)
def test_path_segments_are_quoted_whole(value: object, quoted: str) -> None:
    assert segment(value) == quoted


@pytest.mark.parametrize("command", ["status", "watch", "cancel", "rerun"])
def test_an_empty_run_id_is_a_usage_error(command: str, capsys: pytest.CaptureFixture) -> None:
    assert cli.main([command, " ", "--url", "http://127.0.0.1:9"]) == cli.EXIT_USAGE
    assert "RUN_ID must not be empty" in capsys.readouterr().err


# -- dead letters -------------------------------------------------------------------------------
LETTER = {
    "reason": "not a valid event envelope: run_id [/x] is not a run id",
    "queue": "persist",
    "routing_key": "run.x.log",
    "message_id": "x:1",
    "dead_at": "2026-12-01T22:26:40.123Z",
    "size": 52,
    "preview": "{}",
}


def dead_letters_shown(page: dict, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    terminal.print_dead_letters(console, page)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_dead_letters_are_listed_with_their_whole_reason() -> None:
    out = dead_letters_shown({"dead_letters": [LETTER], "total": 1})
    assert LETTER["reason"] in out  # whole, and never read as markup
    assert "persist" in out and "run.x.log" in out and "x:1" in out
    assert "2026-12-01 22:26:40" in out and out.rstrip().endswith("1 dead letter")
    more = dead_letters_shown({"dead_letters": [LETTER], "total": 3})
    assert more.rstrip().endswith("1 of 3 dead letters")
    assert dead_letters_shown({"dead_letters": [], "total": 0}).strip() == "no dead letters"


def test_purge_without_yes_is_refused_before_asking_the_gateway(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 answers nothing: had it been asked, this would exit 3 (unreachable).
    assert cli.main(["dead-letters", "purge", "--url", "http://127.0.0.1:9"]) == cli.EXIT_USAGE
    assert "pass --yes to confirm" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["list", "replay"])
@pytest.mark.parametrize("limit", ["0", "-2", "many"])
def test_dead_letter_limits_must_be_positive_whole_numbers(action: str, limit: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["dead-letters", action, "--limit", limit, "--url", "http://127.0.0.1:9"])
    assert exited.value.code == cli.EXIT_USAGE
