"""The estimate of an active run's remaining time, and what it says it is based on."""

from __future__ import annotations

from snakedeck import eta
from snakedeck.envelope import iso_from_epoch

NOW = 1_780_000_000.0


def run(**pending: int) -> dict:
    return {
        "workflow": "demo",
        "cores": 2,
        "rule_counts": {rule: {"pending": n, "running": 0} for rule, n in pending.items()},
    }


def test_pending_jobs_at_their_rules_mean_time_run_as_many_at_once_as_there_are_cores() -> None:
    history = [{"align": {"count": 2, "seconds": 40.0}}, {"align": {"count": 2, "seconds": 20.0}}]
    got = eta.estimate(run(align=4), current={}, history=history, running=[], now=NOW)
    assert got is not None
    assert got["seconds_remaining"] == 30.0  # 4 jobs of 15 s, 2 at a time
    assert "2 earlier COMPLETE run(s) of demo" in got["basis"] and "2 at a time" in got["basis"]
    assert got["estimated_end"] == iso_from_epoch(NOW + 30)


def test_this_runs_finished_jobs_count_and_a_running_job_has_its_elapsed_time_off() -> None:
    current = {"align": {"count": 1, "seconds": 30.0}}
    running = [{"rule": "align", "started_at": iso_from_epoch(NOW - 10)}]
    got = eta.estimate(run(), current=current, history=[], running=running, now=NOW)
    assert got is not None and got["seconds_remaining"] == 20.0
    assert "1 finished job(s) of this run" in got["basis"]


def test_rules_without_timing_use_the_mean_of_all_and_say_so() -> None:
    got = eta.estimate(
        run(merge=1), current={"align": {"count": 3, "seconds": 30.0}}, history=[], running=[],
        now=NOW,
    )  # fmt: skip
    assert got is not None and got["seconds_remaining"] == 10.0
    assert "no timing yet for merge" in got["basis"]


def test_no_timing_at_all_or_nothing_left_means_no_estimate() -> None:
    assert eta.estimate(run(align=3), current={}, history=[], running=[], now=NOW) is None
    timed = {"align": {"count": 1, "seconds": 5.0}}
    assert eta.estimate(run(), current=timed, history=[], running=[], now=NOW) is None


def test_one_long_job_left_is_never_done_faster_than_itself() -> None:
    history = [{"big": {"count": 1, "seconds": 100.0}, "small": {"count": 10, "seconds": 10.0}}]
    got = eta.estimate(run(big=1, small=1), current={}, history=history, running=[], now=NOW)
    assert got is not None and got["seconds_remaining"] == 100.0
