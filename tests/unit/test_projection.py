"""The pure folds of events into run and job documents: order never changes the outcome."""

from __future__ import annotations

import itertools

from snakedeck import envelope, projection
from snakedeck.envelope import Envelope


def ev(seq: int, type_: str, data: dict | None = None, *, ts_s: int | None = None, msg: str = ""):
    second = seq if ts_s is None else ts_s
    return envelope.make(
        "r1",
        type_,
        data=data or {},
        msg=msg,
        source="runner" if type_ == "run_state" else "snakemake",
        ts=f"2026-03-02T09:00:{second:02d}.000Z",
        seq=seq,
    )


def fold_run_all(events: list[Envelope]) -> dict:
    doc = projection.new_run("r1")
    for event in events:
        projection.fold_run(doc, event)
    return doc


def fold_job_all(events: list[Envelope], closed_seq: int | None = None) -> dict:
    doc = projection.new_job("r1", "5")
    for event in events:
        projection.fold_job(doc, event, closed_seq)
    return doc


def test_job_ids_of_each_snakemake_event():
    assert projection.job_ids(ev(1, "job_started", {"jobs": [3, 4]})) == ["3", "4"]
    assert projection.job_ids(ev(1, "job_info", {"jobid": 3})) == ["3"]
    assert projection.job_ids(ev(1, "job_error", {"jobid": 3})) == ["3"]
    assert projection.job_ids(ev(1, "job_finished", {"job_id": 3})) == ["3"]
    assert projection.job_ids(ev(1, "progress", {"done": 1, "total": 2})) == []


def test_the_newest_run_state_wins_whatever_the_arrival_order():
    events = [
        ev(1, "run_state", {"state": "INITIALIZING"}),
        ev(2, "run_state", {"state": "RUNNING"}),
        ev(3, "workflow_started", {"workflow_id": "w", "snakefile": "S"}),
        ev(9, "run_state", {"state": "COMPLETE", "exit_code": 0}),
    ]
    results = [fold_run_all(list(p)) for p in itertools.permutations(events)]
    assert all(r == results[0] for r in results)
    doc = results[0]
    assert doc["state"] == "COMPLETE" and doc["exit_code"] == 0
    assert doc["started_at"] == "2026-03-02T09:00:02.000Z"
    assert doc["finished_at"] == "2026-03-02T09:00:09.000Z"
    assert doc["closed_seq"] == 9 and doc["last_seq"] == 9


def test_an_older_run_info_does_not_undo_a_newer_progress_total():
    run_info = ev(4, "run_info", {"stats": {"a": 2, "b": 1, "total": 3}})
    progress = ev(20, "progress", {"done": 1, "total": 5})
    for order in ([run_info, progress], [progress, run_info]):
        doc = fold_run_all(order)
        assert doc["progress"]["total"] == 5
        assert doc["rule_totals"] == {"a": 2, "b": 1}


def test_a_job_moves_forward_only():
    started = ev(10, "job_started", {"jobs": [5]})
    info = ev(11, "job_info", {"jobid": 5, "rule_name": "align", "log": ["l.log"], "threads": 4})
    finished = ev(15, "job_finished", {"job_id": 5})
    results = [fold_job_all(list(p)) for p in itertools.permutations([started, info, finished])]
    assert all(r == results[0] for r in results)
    job = results[0]
    assert job["state"] == "done" and job["rule"] == "align" and job["threads"] == 4
    assert job["log"] == ["l.log"]
    assert job["duration"] == 5.0


def test_a_job_error_records_the_failure_and_its_log():
    info = ev(11, "job_info", {"jobid": 5, "rule_name": "align", "log": []})
    error = ev(
        14,
        "job_error",
        {"jobid": 5, "rule_name": "align", "log": ["logs/align.log"], "aux": {}},
        msg="Error in rule align, jobid: 5",
    )
    for order in ([info, error], [error, info]):
        job = fold_job_all(order)
        assert job["state"] == "failed"
        assert job["log"] == ["logs/align.log"]
        assert job["error"]["msg"] == "Error in rule align, jobid: 5"


def test_a_job_open_when_the_run_closed_is_cancelled_but_one_finished_before_stays_done():
    started = ev(10, "job_started", {"jobs": [5]})
    assert fold_job_all([started], closed_seq=30)["state"] == "cancelled"
    finished = ev(12, "job_finished", {"job_id": 5})
    for order in ([started, finished], [finished, started]):
        assert fold_job_all(order, closed_seq=30)["state"] == "done"
    # Events after the close are not the close's business.
    assert fold_job_all([ev(40, "job_started", {"jobs": [5]})], closed_seq=30)["state"] == (
        "running"
    )


def test_summarize_counts_planned_jobs_as_pending_and_unnamed_jobs_in_progress_only():
    doc = projection.new_run("r1")
    doc["rule_totals"] = {"align": 3, "merge": 1}
    doc["progress"]["total"] = 4
    doc["counts"] = {"align": {"done": 1, "running": 1}, projection.UNKNOWN_RULE: {"running": 1}}
    projection.summarize(doc)
    assert doc["rule_counts"]["align"] == {
        "pending": 1, "running": 1, "done": 1, "failed": 0, "cancelled": 0, "not_run": 0,
        "total": 3,
    }  # fmt: skip
    assert doc["rule_counts"]["merge"]["pending"] == 1
    assert projection.UNKNOWN_RULE not in doc["rule_counts"]
    assert doc["progress"] == {
        "pending": 1, "running": 2, "done": 1, "failed": 0, "cancelled": 0, "not_run": 0,
        "total": 4,
    }  # fmt: skip


def test_an_ended_run_leaves_no_job_pending_and_counts_each_outcome_apart():
    doc = projection.new_run("r1")
    doc["rule_totals"] = {"make": 4, "merge": 1}
    doc["counts"] = {"make": {"done": 2, "failed": 1, "cancelled": 1}}
    projection.fold_run(doc, ev(9, "run_state", {"state": "EXECUTOR_ERROR"}))
    projection.summarize(doc)
    p = doc["progress"]
    assert p["pending"] == 0 and p["running"] == 0
    assert (p["done"], p["failed"], p["cancelled"], p["not_run"], p["total"]) == (2, 1, 1, 1, 5)
    assert doc["rule_counts"]["merge"]["not_run"] == 1


def test_summaries_keep_only_the_compact_fields():
    run = projection.new_run("r1") | {"config": {"big": "x" * 100}, "workflow": "align"}
    summary = projection.run_summary(run)
    assert summary["run_id"] == "r1" and summary["workflow"] == "align"
    assert "config" not in summary
    job = projection.new_job("r1", "5") | {"shellcmd": "bwa mem", "rule": "align"}
    assert "shellcmd" not in projection.job_summary(job)
    assert projection.job_summary(job)["rule"] == "align"


def test_a_retried_job_keeps_every_attempt_and_ends_as_its_last_one():
    """Snakemake retries under the same jobid: job_info, job_error, then job_started, job_info,
    job_finished. The job is done, with the second attempt's times and no error left over."""
    events = [
        ev(10, "job_started", {"jobs": [5]}),
        ev(11, "job_info", {"jobid": 5, "rule_name": "flaky", "log": []}),
        ev(14, "job_error", {"jobid": 5, "rule_name": "flaky"}, msg="Error in rule flaky"),
        ev(16, "job_started", {"jobs": [5]}),
        ev(17, "job_info", {"jobid": 5, "rule_name": "flaky", "log": []}),
        ev(20, "job_finished", {"job_id": 5}),
    ]
    results = [fold_job_all(list(p)) for p in itertools.permutations(events)]
    assert all(r == results[0] for r in results)
    job = results[0]
    assert job["state"] == "done" and "error" not in job
    assert job["attempt"] == 2
    assert [(a["attempt"], a["state"]) for a in job["attempts"]] == [(1, "failed"), (2, "done")]
    assert job["attempts"][0]["error"] == "Error in rule flaky"
    assert job["started_at"] == "2026-03-02T09:00:16.000Z" and job["duration"] == 4.0


def test_a_job_failing_on_every_attempt_carries_the_last_error():
    events = [
        ev(11, "job_info", {"jobid": 5, "rule_name": "flaky"}),
        ev(14, "job_error", {"jobid": 5}, msg="first"),
        ev(17, "job_info", {"jobid": 5, "rule_name": "flaky"}),
        ev(20, "job_error", {"jobid": 5}, msg="second"),
    ]
    for order in (events, events[::-1]):
        job = fold_job_all(order)
        assert job["state"] == "failed" and job["attempt"] == 2
        assert job["error"]["msg"] == "second"


# -- attempts (resume) ----------------------------------------------------------------------------
def state(seq: int, name: str, attempt: int | None = None, **data) -> Envelope:
    extra = {"attempt": attempt} if attempt is not None else {}
    return ev(seq, "run_state", {"state": name, **extra, **data})


def test_each_attempt_has_one_end_and_the_run_shows_its_latest_whatever_the_order():
    events = [
        state(1, "INITIALIZING", runner="r-a", host="h"),
        state(2, "RUNNING"),
        state(8, "EXECUTOR_ERROR", reason="job 6 failed", exit_code=1),
        state(9, "INITIALIZING", 2, runner="r-a"),
        state(10, "RUNNING", 2),
        state(15, "COMPLETE", 2, exit_code=0),
    ]
    results = [fold_run_all(list(p)) for p in itertools.permutations(events)]
    assert all(r == results[0] for r in results)
    doc = results[0]
    assert (doc["state"], doc["attempt"], doc["closed_seq"], doc["settled_seq"]) == (
        "COMPLETE", 2, 15, 15,
    )  # fmt: skip
    assert [(a["attempt"], a["state"], a["closed_seq"]) for a in doc["attempts"]] == [
        (1, "EXECUTOR_ERROR", 8), (2, "COMPLETE", 15),
    ]  # fmt: skip
    assert doc["attempts"][0]["reason"] == "job 6 failed"
    assert doc["attempts"][1]["started_at"] == "2026-03-02T09:00:09.000Z"
    assert doc["finished_at"] == "2026-03-02T09:00:15.000Z" and doc["exit_code"] == 0
    assert doc["runner"] == "r-a" and "anomalies" not in doc


def test_while_a_resumed_attempt_runs_the_run_is_open_and_the_first_end_settles_its_jobs():
    events = [state(1, "INITIALIZING"), state(8, "CANCELED"), state(9, "INITIALIZING", 2)]
    for order in itertools.permutations(events):
        doc = fold_run_all(list(order))
        assert doc["state"] == "INITIALIZING" and doc["closed_seq"] is None
        assert doc["settled_seq"] == 8 and doc["finished_at"] is None


def test_a_second_end_of_one_attempt_is_an_anomaly_but_each_attempt_ends_once():
    doc = fold_run_all([state(5, "EXECUTOR_ERROR"), state(6, "COMPLETE")])
    assert doc["state"] == "EXECUTOR_ERROR" and len(doc["anomalies"]) == 1
    doc = fold_run_all([state(5, "EXECUTOR_ERROR"), state(7, "COMPLETE", 2)])
    assert doc["state"] == "COMPLETE" and "anomalies" not in doc


def test_a_resume_starts_a_queued_attempt_that_its_events_then_move():
    doc = fold_run_all([state(1, "INITIALIZING"), state(4, "CANCELED")])
    doc["cancel_requested"] = True
    rec = projection.start_attempt(doc, at="2026-03-02T09:01:00.000Z", by="ada")
    assert rec["attempt"] == 2 and doc["state"] == "QUEUED" and doc["attempt"] == 2
    assert doc["closed_seq"] is None and doc["settled_seq"] == 4
    assert "cancel_requested" not in doc
    projection.fold_run(doc, state(5, "INITIALIZING", 2))
    assert doc["state"] == "INITIALIZING" and doc["attempts"][1]["requested_by"] == "ada"
    failed = projection.fail_attempt(fold_run_all([state(4, "CANCELED")]), "x", at="t")
    assert failed["state"] == "CANCELED"  # nothing to fail: the attempt had ended
    projection.start_attempt(failed, at="t", by=None)
    projection.fail_attempt(failed, "runner queue unreachable", at="t2")
    assert failed["state"] == "SYSTEM_ERROR" and failed["attempts"][1]["closed_seq"] == 4


def test_a_job_settled_by_the_first_attempt_opens_again_when_the_resume_runs_it():
    """Job 5 was running when attempt 1 ended at seq 8 (cancelled); attempt 2 runs it again
    (seq 11, 13). Settled by the latest end of any attempt, in any arrival order."""
    job_events = [
        ev(3, "job_info", {"jobid": 5, "rule_name": "align"}),
        ev(11, "job_info", {"jobid": 5, "rule_name": "align"}),
        ev(13, "job_finished", {"job_id": 5}),
    ]
    assert fold_job_all(job_events[:1], closed_seq=8)["state"] == "cancelled"
    for order in itertools.permutations(job_events):
        for closed in (8, 15):  # attempt 2 still running, or ended at 15
            job = fold_job_all(list(order), closed_seq=closed)
            assert job["state"] == "done" and job["attempt"] == 2
    assert fold_job_all(job_events[:2], closed_seq=8)["state"] == "running"
    assert fold_job_all(job_events[:2], closed_seq=15)["state"] == "cancelled"


# -- failures and resources -------------------------------------------------------------------
def failure(seq: int, text: str, **data) -> Envelope:
    return ev(seq, "job_failure", {"jobid": 5, "message": text, "text": text, **data})


def test_a_failed_job_carries_its_failure_in_any_order():
    events = [
        ev(11, "job_info", {"jobid": 5, "rule_name": "plot"}),
        ev(14, "job_error", {"jobid": 5}, msg="Error in rule plot, jobid: 5"),
        failure(15, "ModuleNotFoundError: No module named 'matplotlib'", exit_code=None),
    ]
    results = [fold_job_all(list(p)) for p in itertools.permutations(events)]
    assert all(r == results[0] for r in results)
    job = results[0]
    assert job["state"] == "failed"
    assert job["failure"]["message"] == "ModuleNotFoundError: No module named 'matplotlib'"
    assert projection.job_ids(events[2]) == ["5"]


def test_a_failure_belongs_to_its_attempt():
    first = [
        ev(11, "job_info", {"jobid": 5}),
        ev(14, "job_error", {"jobid": 5}),
        failure(15, "first"),
        ev(17, "job_info", {"jobid": 5}),
    ]
    assert "failure" not in fold_job_all([*first, ev(20, "job_finished", {"job_id": 5})])
    second_failed = fold_job_all([*first, ev(20, "job_error", {"jobid": 5})])
    assert second_failed["state"] == "failed" and "failure" not in second_failed
    with_its_own = fold_job_all([*first, ev(20, "job_error", {"jobid": 5}), failure(21, "2nd")])
    assert with_its_own["failure"]["text"] == "2nd"


def test_measured_resources_fold_onto_the_job_newest_first():
    used = {"jobid": 5, "cpu_seconds": 3.1, "peak_rss_bytes": 310_000_000, "wall_seconds": 4.0}
    older = ev(20, "job_resources", used)
    newer = ev(30, "job_resources", {**used, "cpu_seconds": 3.3})
    for order in ([older, newer], [newer, older]):
        job = fold_job_all(order)
        assert job["resources_used"]["cpu_seconds"] == 3.3
        assert job["resources_used"]["peak_rss_bytes"] == 310_000_000
    assert projection.job_summary(fold_job_all([older]))["resources_used"]["cpu_seconds"] == 3.1


def test_the_resource_series_is_bounded_and_the_same_in_any_order_and_on_replay():
    import random

    t0 = 1_780_000_000
    samples = [
        ev(100 + i, "run_resources", {"t": t0 + i * 5.3, "cpu_percent": (i * 37) % 190,
                                       "rss_bytes": 1_000_000 + (i * 7919) % 50_000_000})
        for i in range(700)
    ]  # fmt: skip
    expected = fold_run_all(samples)["resource_series"]
    assert len(expected["points"]) <= projection.SERIES_POINTS
    assert expected["width"] == 10
    rng = random.Random(7)
    for _ in range(3):
        shuffled = list(samples)
        rng.shuffle(shuffled)
        assert fold_run_all(shuffled + shuffled[:50])["resource_series"] == expected
    peak = max(s["data"]["rss_bytes"] for s in samples)
    assert max(p[2] for p in expected["points"]) == peak
    few = fold_run_all(samples[:3])["resource_series"]
    assert few["width"] == 5 and len(few["points"]) == 3
    assert fold_run_all([ev(1, "run_resources", {"t": "x"})]).get("resource_series") is None
