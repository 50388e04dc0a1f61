"""Cluster jobs without a cluster: the executor choice, the submission line, the job fields."""

from __future__ import annotations

import itertools
import signal
from pathlib import Path

import pytest

from runner.cluster_jobs import submitted
from runner.executor import ExecutorError, executor_args, stop_signal
from snakedeck import cluster, envelope, executors, projection
from snakedeck.settings import Settings, SettingsError
from snakedeck.spool import SpoolWriter
from tests.unit.test_plugin import make_handler, no_env, read_spool, record  # noqa: F401
from tests.unit.test_projection import ev, fold_job_all

REPO = Path(__file__).resolve().parents[2]
LINE = "Job 3 has been submitted with SLURM jobid 17 (log: /w/.snakemake/slurm_logs/x/17.log)."


def test_the_submission_line_names_the_job_and_its_cluster_job() -> None:
    assert cluster.parse_submission(LINE) == {
        "jobid": "3", "cluster_job_id": "17", "scheduler": "slurm",
    }  # fmt: skip
    assert cluster.parse_submission("Job 3 has been submitted") is None
    assert cluster.parse_submission("Select jobs to execute...") is None


def test_the_plugin_records_a_job_cluster_event_after_the_line(
    tmp_path: Path,
    no_env: None,  # noqa: F811
) -> None:
    spool = tmp_path / "events.jsonl"
    handler = make_handler(spool=str(spool), run_id="r-1")
    handler.handle(record(LINE))
    handler.handle(record("Job 3 has been submitted, somehow"))
    handler.close()
    events = read_spool(spool)
    assert [e["type"] for e in events] == ["log", "job_cluster", "log"]
    assert events[1]["data"] == {"jobid": "3", "cluster_job_id": "17", "scheduler": "slurm"}
    envelope.validate(events[1], require_seq=False)


def test_a_job_keeps_each_cluster_field_from_its_newest_event_in_any_order() -> None:
    events = [
        ev(2, "job_info", {"jobid": 5, "rule_name": "count"}),
        ev(3, "job_cluster", {"jobid": "5", "cluster_job_id": "17", "scheduler": "slurm"}),
        ev(9, "job_cluster", {"jobid": "5", "cluster_job_id": "17", "partition": "debug",
                              "node": "vm", "cluster_state": "COMPLETED", "node_extra": 1}),
        ev(10, "job_finished", {"job_id": 5}),
    ]  # fmt: skip
    assert projection.job_ids(events[1]) == ["5"]
    docs = [fold_job_all(list(order)) for order in itertools.permutations(events)]
    for doc in docs:
        assert doc["state"] == "done"
        assert (doc["cluster_job_id"], doc["partition"], doc["node"]) == ("17", "debug", "vm")
        assert doc["cluster_state"] == "COMPLETED" and "node_extra" not in doc
    summary = projection.job_summary(docs[0])
    assert (summary["cluster_job_id"], summary["partition"], summary["node"]) == (
        "17", "debug", "vm",
    )  # fmt: skip


def test_the_runner_reads_this_attempts_cluster_jobs_back_from_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "events.jsonl"
    writer = SpoolWriter(spool)
    writer.append(envelope.make("r", "job_cluster", data={"jobid": "1", "cluster_job_id": "7"}))
    since = spool.stat().st_size
    writer.append(envelope.make("r", "log", msg="x"))
    writer.append(envelope.make("r", "job_cluster", data={"jobid": "2", "cluster_job_id": "8"}))
    writer.close()
    assert [(j.jobid, j.cluster_job_id) for j in submitted(spool)] == [("1", "7"), ("2", "8")]
    assert [j.cluster_job_id for j in submitted(spool, since)] == ["8"]


def test_the_executor_comes_from_the_workflows_own_profile_or_the_plugin_defaults(
    tmp_path: Path,
) -> None:
    demo = REPO / "workflows" / "demo"
    assert executor_args(demo, "", None) == []
    args = executor_args(demo, "slurm", None)
    assert args == ["--workflow-profile", str(demo / "profiles" / "slurm"), "--executor", "slurm"]
    assert executor_args(tmp_path, "slurm", None) == ["--executor", "slurm"]
    site = tmp_path / "site"
    site.mkdir()
    with pytest.raises(ExecutorError, match=r"no config\.yaml"):
        executor_args(demo, "slurm", site)
    (site / "config.yaml").write_text("default-resources:\n  slurm_account: lab\n")
    assert executor_args(demo, "", site) == ["--profile", str(site)]
    with pytest.raises(ExecutorError, match="not installed"):
        executor_args(demo, "no-such-cluster", None)


def test_jobs_on_a_cluster_are_stopped_with_sigint_so_snakemake_cancels_them() -> None:
    assert stop_signal("") == signal.SIGTERM
    assert stop_signal("slurm") == signal.SIGINT


@pytest.mark.parametrize(
    ("site", "workflow", "chosen"),
    [
        ("", None, ""),  # neither: Snakemake's local executor, as before
        ("", "slurm", "slurm"),  # the workflow's
        ("", "local", "local"),
        ("slurm", None, "slurm"),  # the site's
        ("slurm", "other-cluster", "slurm"),  # the site decides
        ("local", "slurm", "local"),  # a site may keep every job on the runner's host
    ],
)
def test_the_sites_executor_wins_over_the_workflows(
    site: str, workflow: str | None, chosen: str
) -> None:
    assert executors.resolve(site, workflow) == chosen


@pytest.mark.parametrize("bad", ["SLURM", "slurm;rm", "../x", "-x"])
def test_an_executor_name_is_checked(bad: str) -> None:
    with pytest.raises(SettingsError, match="SNAKEDECK_EXECUTOR"):
        Settings.from_env({"SNAKEDECK_EXECUTOR": bad})
    assert Settings.from_env({"SNAKEDECK_EXECUTOR": "slurm"}).executor == "slurm"


def test_the_drawer_tells_the_cluster_job_in_one_line() -> None:
    from dashboard.pages.run.detail import cluster_text, facts

    job = {"jobid": "3", "state": "failed", "cluster_job_id": "17", "scheduler": "slurm",
           "partition": "debug", "node": "vm", "cluster_state": "TIMEOUT",
           "cluster_reason": "TimeLimit"}  # fmt: skip
    assert cluster_text(job) == "slurm job 17 · partition debug · node vm · TIMEOUT (TimeLimit)"
    assert len(facts(job)) == len(facts({"jobid": "3", "state": "failed"})) + 1


def test_a_run_failed_on_the_cluster_says_what_the_scheduler_said(tmp_path: Path) -> None:
    from runner.run import SpoolSummary

    spool = tmp_path / "events.jsonl"
    writer = SpoolWriter(spool)
    writer.append(envelope.make("r", "job_cluster", data={
        "jobid": "3", "cluster_job_id": "17", "scheduler": "slurm"}))  # fmt: skip
    writer.append(envelope.make("r", "job_error", data={"jobid": 3}, msg="Error in rule a"))
    writer.append(envelope.make("r", "job_error", data={"jobid": 4}, msg="Error in rule b"))
    writer.append(envelope.runner_event("r", "job_cluster", {
        "jobid": "3", "cluster_job_id": "17", "cluster_state": "TIMEOUT",
        "cluster_reason": "TimeLimit"}))  # fmt: skip
    writer.close()
    assert SpoolSummary(spool).failure_reason("x") == (
        "Error in rule a (slurm job 17: TIMEOUT, TimeLimit); Error in rule b"
    )
