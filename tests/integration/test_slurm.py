"""The demo workflow's jobs on a real SLURM cluster (``scripts/slurm-up``), run and watched
through a real deployment: a consumer, a runner with ``SNAKEDECK_EXECUTOR=slurm`` and a
gateway, over the real RabbitMQ and the Mongo wire store.

What a user checks: every job ran as a SLURM job (its id is in ``sacct``), the run's job
documents carry that id with the partition and node SLURM gave it, and cancelling a run leaves
none of its jobs in ``squeue``, also a run that a restarted runner adopted from its SIGKILLed
predecessor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from snakedeck.settings import Settings
from snakedeck.store import JobFilter
from tests.support.deployment import Deployment
from tests.support.slurm import SlurmCluster, slurm_cluster  # noqa: F401 - the fixture
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CLUSTER_RULES = {"make_sample", "count", "summarize"}
"""The demo's rules that run as cluster jobs (``all`` is a local rule)."""


def _deployment(tmp_path: Path, settings_factory, **overrides: object) -> Iterator[Deployment]:
    base: Settings = settings_factory(
        backend="mongo", executor="slurm", heartbeat_interval=1.0, max_runs=2, **overrides
    )
    d = Deployment(tmp_path, base)
    d.up()
    yield d
    d.close()


@pytest.fixture
def deployment(
    tmp_path: Path,
    slurm_cluster: SlurmCluster,  # noqa: F811
    settings_factory,
) -> Iterator[Deployment]:
    """Cancel grace 30 s: time for Snakemake to end on SIGINT (about 20 s here)."""
    yield from _deployment(tmp_path, settings_factory, cancel_grace=30.0)


@pytest.fixture
def default_grace_deployment(
    tmp_path: Path,
    slurm_cluster: SlurmCluster,  # noqa: F811
    settings_factory,
) -> Iterator[Deployment]:
    """The default cancel grace (10 s): a cancelled Snakemake still waiting on its SLURM
    jobs is SIGKILLed, its exit recorder with it, so the runner has no exit status to go by."""
    yield from _deployment(tmp_path, settings_factory)


def _jobs(d: Deployment, run_id: str) -> list[dict]:
    return d.store.list_jobs(run_id, JobFilter(), page_size=1000).items


def _placed_in_spool(d: Deployment, run_id: str) -> set[str]:
    """Cluster job ids whose node the run's spool records (on the runner's disk)."""
    (spool,) = d.tmp.glob(f"*/runs/{run_id}/events.jsonl")
    placed: set[str] = set()
    for line in spool.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("type") == "job_cluster" and event.get("data", {}).get("node"):
                placed.add(str(event["data"].get("cluster_job_id")))
    return placed


def test_demo_runs_every_job_as_a_recorded_slurm_job(
    deployment: Deployment,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    run_id = deployment.submit({"samples": 2, "sleep": 0.5})
    run = deployment.wait_ended(run_id, timeout=400)
    assert run["state"] == "COMPLETE", (run.get("state"), run.get("state_reason"))

    jobs = [j for j in _jobs(deployment, run_id) if j.get("rule") in CLUSTER_RULES]
    assert len(jobs) == 5, [(j.get("rule"), j.get("state")) for j in jobs]
    ids = [j.get("cluster_job_id") for j in jobs]
    assert all(ids), f"jobs without a cluster job id: {jobs}"
    assert len(set(ids)) == len(ids)

    accounted = slurm_cluster.accounted(ids)  # type: ignore[arg-type]
    assert set(accounted) == set(ids), f"not in sacct: {set(ids) - set(accounted)}"
    node = socket.gethostname().split(".")[0]
    for job in jobs:
        acct = accounted[job["cluster_job_id"]]
        assert acct.state == "COMPLETED", acct
        assert job["state"] == "done"
        assert job.get("partition") == acct.partition == slurm_cluster.partition
        assert job.get("node") == acct.node == node
        assert job.get("cluster_state") == "COMPLETED"

    # The REST job documents carry the same fields.
    resp = requests.get(f"{deployment.url}/api/v1/runs/{run_id}/jobs", timeout=30)
    assert resp.status_code == 200, resp.text
    rest = {j["jobid"]: j for j in resp.json()["jobs"]}
    for job in jobs:
        assert rest[job["jobid"]]["cluster_job_id"] == job["cluster_job_id"]
        assert rest[job["jobid"]]["partition"] == slurm_cluster.partition
        assert rest[job["jobid"]]["node"] == node

    # And WES tasks name the cluster job beside their state.
    resp = requests.get(f"{deployment.url}/ga4gh/wes/v1/runs/{run_id}/tasks", timeout=30)
    assert resp.status_code == 200, resp.text
    tasks = {t["id"]: t for t in resp.json()["task_logs"]}
    for job in jobs:
        system = tasks[job["jobid"]]["system_logs"]
        assert f"cluster_job_id: {job['cluster_job_id']}" in system, system
        assert f"partition: {slurm_cluster.partition}" in system and f"node: {node}" in system


def test_cancel_leaves_none_of_the_runs_jobs_in_squeue(
    deployment: Deployment,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    run_id = deployment.submit({"samples": 2, "sleep": 60})

    def submitted() -> list[str] | None:
        time.sleep(0.5)
        ids = [j.get("cluster_job_id") for j in _jobs(deployment, run_id)]
        ids = [i for i in ids if i]
        return ids if len(ids) >= 2 and len(slurm_cluster.queued(ids)) >= 2 else None

    ids = wait_for(submitted, 180, "two cluster jobs of the run in squeue")

    # While they run, the job documents say where (the runner's squeue watch).
    node = socket.gethostname().split(".")[0]

    def placed() -> bool:
        time.sleep(0.5)
        jobs = {j.get("cluster_job_id"): j for j in _jobs(deployment, run_id)}
        return all(jobs[i].get("node") == node and jobs[i]["state"] == "running" for i in ids)

    wait_for(placed, 60, "the running jobs to show their node")

    resp = requests.post(f"{deployment.url}/api/v1/runs/{run_id}/cancel", timeout=30)
    assert resp.status_code == 202, resp.text
    run = deployment.wait_ended(run_id, timeout=240)
    assert run["state"] == "CANCELED", (run.get("state"), run.get("state_reason"))

    wait_for(lambda: not slurm_cluster.queued(ids), 60, f"{ids} to leave squeue")
    accounted = slurm_cluster.accounted(ids)
    assert {a.state for a in accounted.values()} == {"CANCELLED"}, accounted
    jobs = {j["cluster_job_id"]: j for j in _jobs(deployment, run_id) if j.get("cluster_job_id")}
    assert {jobs[i]["state"] for i in ids} == {"cancelled"}


def test_a_job_failing_on_the_cluster_shows_the_schedulers_state(
    deployment: Deployment,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    run_id = deployment.submit({"samples": 2, "sleep": 0.2, "fail_sample": "s1"})
    run = deployment.wait_ended(run_id, timeout=400)
    assert run["state"] == "EXECUTOR_ERROR", (run.get("state"), run.get("state_reason"))
    failed = [j for j in _jobs(deployment, run_id) if j["state"] == "failed"]
    assert [j.get("rule") for j in failed] == ["make_sample"], failed
    job = failed[0]
    accounted = slurm_cluster.accounted([job["cluster_job_id"]])[job["cluster_job_id"]]
    assert accounted.state == "FAILED"
    assert job.get("cluster_state") == "FAILED"
    # The run's reason names the cluster job and what SLURM said of it.
    assert f"slurm job {job['cluster_job_id']}: FAILED" in run.get("state_reason", "")


def test_cancel_of_a_run_adopted_after_a_runner_restart_leaves_none_of_its_jobs_in_squeue(
    default_grace_deployment: Deployment,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    """The runner is SIGKILLed while the run's SLURM jobs run (Snakemake goes on in its own
    session); the runner started again with the same settings and DATA_DIR adopts the run, and
    a cancel then still ends it CANCELED with nothing of it left in ``squeue``."""
    deployment = default_grace_deployment
    # One sample more than the node has CPUs (scripts/slurm-up: this machine's): one job waits
    # 40 s for a CPU, so at least one has no node yet when the runner dies (the pending one,
    # or all if the runner's first squeue look had not come yet).
    samples = (os.cpu_count() or 2) + 1
    run_id = deployment.submit({"samples": samples, "sleep": 40})

    def submitted() -> list[str] | None:
        time.sleep(0.5)
        ids = [j.get("cluster_job_id") for j in _jobs(deployment, run_id)]
        ids = [i for i in ids if i]
        return ids if len(ids) >= samples and len(slurm_cluster.queued(ids)) >= samples else None

    first = wait_for(submitted, 180, f"{samples} cluster jobs of the run in squeue")

    runner = deployment.procs[1]
    assert runner.role == "runner"
    runner.kill(signal.SIGKILL)  # Snakemake and its jobs go on
    killed = time.time()
    assert set(slurm_cluster.queued(first)) == set(first)
    unplaced = set(first) - _placed_in_spool(deployment, run_id)  # the old runner's last word
    assert unplaced, "a job SLURM had not started yet"
    time.sleep(2)
    deployment.runner()  # same name, same DATA_DIR: the same identity comes back

    def adopted() -> bool:
        time.sleep(0.5)
        beats = [b for b in deployment.store.runner_beats() if b.started_at > killed]
        return any(run_id in b.runs for b in beats)

    wait_for(adopted, 60, "the restarted runner to hold the run again")
    assert deployment.run(run_id).get("state") == "RUNNING"

    # The jobs go on under the adopting runner, and a job the dead runner never saw started
    # shows where it runs while it runs: the adopting runner watches squeue as the first did.
    node = socket.gethostname().split(".")[0]

    def placed_after_restart() -> bool:
        time.sleep(0.5)
        return any(
            j.get("cluster_job_id") in unplaced
            and j["state"] == "running"
            and j.get("node") == node
            for j in _jobs(deployment, run_id)
        )

    wait_for(placed_after_restart, 150, "a job started after the restart to show its node")
    now = [j["cluster_job_id"] for j in _jobs(deployment, run_id) if j.get("cluster_job_id")]
    at_cancel = slurm_cluster.queued(now)
    assert at_cancel, "jobs of the run are in squeue when it is cancelled"

    resp = requests.post(f"{deployment.url}/api/v1/runs/{run_id}/cancel", timeout=30)
    assert resp.status_code == 202, resp.text
    run = deployment.wait_ended(run_id, timeout=240)
    assert run["state"] == "CANCELED", (run.get("state"), run.get("state_reason"))

    jobs = [j for j in _jobs(deployment, run_id) if j.get("rule") in CLUSTER_RULES]
    ids = [j["cluster_job_id"] for j in jobs if j.get("cluster_job_id")]
    assert set(first) <= set(ids)
    wait_for(lambda: not slurm_cluster.queued(ids), 60, f"{ids} to leave squeue")
    accounted = slurm_cluster.accounted(ids)
    assert set(accounted) == set(ids), f"not in sacct: {set(ids) - set(accounted)}"
    assert {accounted[i].state for i in at_cancel} == {"CANCELLED"}, accounted
    # Every cluster job of the run is on its job document, as SLURM last saw it.
    for job in jobs:
        if not job.get("cluster_job_id"):
            continue
        acct = accounted[job["cluster_job_id"]]
        assert job.get("cluster_state") == acct.state, (job, acct)
        assert job.get("partition") == slurm_cluster.partition
        if job["cluster_job_id"] in at_cancel:
            assert job["state"] == "cancelled", job
