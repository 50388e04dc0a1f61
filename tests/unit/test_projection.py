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
    counts = {"align": {"done": 1, "running": 1}, None: {"running": 1}}
    projection.summarize(doc, counts)
    assert doc["rule_counts"]["align"] == {
        "pending": 1, "running": 1, "done": 1, "failed": 0, "cancelled": 0, "total": 3
    }  # fmt: skip
    assert doc["rule_counts"]["merge"]["pending"] == 1
    assert None not in doc["rule_counts"]
    assert doc["progress"] == {"done": 1, "total": 4, "failed": 0, "running": 2, "cancelled": 0}


def test_summaries_keep_only_the_compact_fields():
    run = projection.new_run("r1") | {"config": {"big": "x" * 100}, "workflow": "align"}
    summary = projection.run_summary(run)
    assert summary["run_id"] == "r1" and summary["workflow"] == "align"
    assert "config" not in summary
    job = projection.new_job("r1", "5") | {"shellcmd": "bwa mem", "rule": "align"}
    assert "shellcmd" not in projection.job_summary(job)
    assert projection.job_summary(job)["rule"] == "align"
