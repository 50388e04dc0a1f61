"""How the dashboard words a run's progress: only done jobs are progress; failed, cancelled and
never-run jobs are shown beside them; rules in pipeline order."""

from __future__ import annotations

from dashboard import progress
from dashboard.components import progress_bar, progress_words, rule_progress
from snakedeck.states import JobState

FAILED_RUN = {
    "total": 14,
    "done": 4,
    "failed": 1,
    "cancelled": 0,
    "not_run": 9,
    "running": 0,
    "pending": 0,
}
CANCELED_RUN = {"total": 10, "done": 2, "cancelled": 2, "not_run": 6}


def test_a_failed_run_says_done_failed_and_not_run_apart():
    assert progress.progress_text(FAILED_RUN) == "4 of 14 jobs done (28%) · 1 failed · 9 not run"


def test_a_cancelled_run_is_only_as_done_as_its_done_jobs():
    assert progress.done_percent(CANCELED_RUN) == 20
    assert progress.progress_text(CANCELED_RUN) == (
        "2 of 10 jobs done (20%) · 2 cancelled · 6 not run"
    )
    f = progress.fractions(CANCELED_RUN)
    assert f[JobState.DONE] == 20 and f[JobState.CANCELLED] == 20 and f[JobState.NOT_RUN] == 60


def test_a_live_run_shows_running_and_pending():
    live = {"total": 8, "done": 3, "running": 2, "pending": 3}
    assert progress.progress_text(live) == "3 of 8 jobs done (37%) · 2 running · 3 pending"


def test_percent_is_100_only_when_every_job_is_done():
    assert progress.done_percent({"total": 1000, "done": 999}) == 99
    assert progress.done_percent({"total": 3, "done": 3}) == 100
    assert progress.done_percent({}) == 0
    assert progress.progress_text({}) == "0 of 0 jobs done (0%)"
    assert progress.progress_text({"total": "x", "done": None}) == "0 of 0 jobs done (0%)"


def test_bar_sections_follow_the_outcomes():
    bar = progress_bar(FAILED_RUN)
    states = [s.to_plotly_json()["props"]["data-state"] for s in bar.children]
    assert states == ["done", "failed", "not_run"]
    words = progress_words(FAILED_RUN)
    text = "".join(str(c.children) for c in words.children)
    assert text == "4 of 14 jobs done (28%) · 1 failed · 9 not run"


def test_rule_state_names_not_run_rules():
    assert progress.rule_state({"total": 2, "done": 2}) == JobState.DONE
    assert progress.rule_state({"total": 2, "done": 1, "failed": 1}) == JobState.FAILED
    assert progress.rule_state({"total": 2, "running": 1}) == JobState.RUNNING
    assert progress.rule_state({"total": 2, "done": 1, "not_run": 1}) == JobState.NOT_RUN
    assert progress.rule_state({"total": 2, "cancelled": 1, "not_run": 1}) == JobState.CANCELLED
    assert progress.rule_state({"total": 2, "pending": 2}) == JobState.PENDING


def test_rules_follow_the_pipeline_order():
    counts = {"align": {}, "all": {}, "fetch": {}, "merge": {}, "extra": {}}
    order = ["fetch", "align", "merge", "all", "gone"]
    assert progress.ordered_rules(order, counts) == ["fetch", "align", "merge", "all", "extra"]
    assert progress.ordered_rules(None, counts) == list(counts)  # the counts' own order
    rows = rule_progress(progress.ordered_rules(order, counts), counts).children
    assert [r.id["rule"] for r in rows] == ["fetch", "align", "merge", "all", "extra"]
