"""Processes die mid-run: the consumer (three times), the runner (with and without a restart),
Snakemake itself, the gateway (with subscribers on both transports). Nothing is lost, nothing is
executed twice, and a run whose runner is gone for good is declared lost, not left RUNNING."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from runner.supervisor import group_members
from tests.faults.conftest import DEMO_JOBS, demo_config
from tests.support.deployment import Deployment
from tests.support.live_clients import WebSocketFeed
from tests.support.waiting import wait_for


def snakemake_pid(d: Deployment, run_id: str) -> int:
    (pid_file,) = d.tmp.glob(f"*/runs/{run_id}/snakemake.pid")
    return int(pid_file.read_text().strip())


def snakemake_child(recorder_pid: int) -> int:
    """Snakemake itself: the child of its exit recorder."""
    children = Path(f"/proc/{recorder_pid}/task/{recorder_pid}/children").read_text().split()
    return int(children[0])


def test_the_consumer_sigkilled_three_times(deployment_on, shared_broker, record) -> None:
    d = deployment_on(shared_broker)
    d.up()
    consumer = d.procs[0]
    run_id = d.submit(demo_config())
    with d.watch(run_id) as watchers:
        for n in (10, 80, 160):
            d.wait_jobs_done(run_id, n)
            consumer.kill(signal.SIGKILL)
            time.sleep(2)
            consumer = d.consumer()
        recovery = d.caught_up_after(run_id)
        record(
            d.verify(
                "consumer SIGKILLed 3 times",
                run_id,
                expected_state="COMPLETE",
                expected_jobs=DEMO_JOBS,
                feeds=watchers.feeds,
                recovery_s=recovery,
            )
        )


def test_the_runner_sigkilled_and_restarted_adopts_its_run(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker)
    d.up()
    runner = d.procs[1]
    run_id = d.submit(demo_config())
    with d.watch(run_id) as watchers:
        d.wait_jobs_done(run_id, 30)
        runner.kill(signal.SIGKILL)  # Snakemake goes on under its exit recorder
        time.sleep(3)
        d.runner()  # same name, same DATA_DIR: the same identity comes back
        recovery = d.caught_up_after(run_id)
        record(
            d.verify(
                "runner SIGKILLed, restarted: adopts its run",
                run_id,
                expected_state="COMPLETE",
                expected_jobs=DEMO_JOBS,
                feeds=watchers.feeds,
                recovery_s=recovery,
            )
        )


def test_a_runner_sigkilled_for_good_has_its_run_declared_lost(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker, claim_lease=10.0, orphan_grace=20.0)
    d.up()
    runner = d.procs[1]
    run_id = d.submit(demo_config(sleep=0.3))
    with d.watch(run_id) as watchers:
        d.wait_jobs_done(run_id)
        pgid = snakemake_pid(d, run_id)
        runner.kill(signal.SIGKILL)
        killed = time.monotonic()
        run = wait_for(
            lambda: d.run(run_id) if d.run(run_id).get("state") == "SYSTEM_ERROR" else None,
            60,
            "the reaper to declare the run lost",
        )
        declared = time.monotonic() - killed
        assert "was lost" in run["state_reason"] and declared < 60
        figures = d.verify(
            "runner SIGKILLed for good: run declared lost",
            run_id,
            expected_state="SYSTEM_ERROR",
            expected_jobs={},
            feeds=watchers.feeds,
            recovery_s=declared,
        )
        # Unsupervised past the orphan grace, the run's Snakemake stops itself.
        wait_for(lambda: not group_members(pgid), 90, "the orphaned Snakemake to stop")
        figures.notes = f"orphan stopped {time.monotonic() - killed:.0f} s after the kill"
        record(figures)


def test_snakemake_sigkilled_ends_the_run_executor_error(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker)
    d.up()
    run_id = d.submit(demo_config())
    with d.watch(run_id) as watchers:
        d.wait_jobs_done(run_id)
        pgid = snakemake_pid(d, run_id)
        os.kill(snakemake_child(pgid), signal.SIGKILL)
        record(
            d.verify(
                "Snakemake SIGKILLed",
                run_id,
                expected_state="EXECUTOR_ERROR",
                expected_jobs={},
                feeds=watchers.feeds,
            )
        )
        run = d.run(run_id)
        assert run["signal"] == signal.SIGKILL and "SIGKILL" in run["state_reason"]
        wait_for(lambda: not group_members(pgid), 30, "no process of the run left")


def test_the_gateway_restarted_under_its_subscribers(deployment_on, shared_broker, record) -> None:
    d = deployment_on(shared_broker)
    d.up()
    gateway = d.gateways[0]
    run_id = d.submit(demo_config())
    with d.watch(run_id) as watchers:
        d.wait_jobs_done(run_id, 30)
        seen_ws = max(watchers.ws.seqs(run_id), default=0)
        gateway.stop()
        time.sleep(3)
        gateway.start()  # same port: clients reconnect where they were
        watchers.ws.close()
        ws2 = WebSocketFeed(gateway.url, f"/ws/runs/{run_id}?after_seq={seen_ws}")
        try:
            recovery = d.caught_up_after(run_id)

            class Both:
                """The plain-WebSocket client across its reconnect, as one client."""

                def seqs(self, rid: str) -> list[int]:
                    before = [s for s in watchers.ws.seqs(rid) if s <= seen_ws]
                    return before + ws2.seqs(rid)

            record(
                d.verify(
                    "gateway restarted under both transports",
                    run_id,
                    expected_state="COMPLETE",
                    expected_jobs=DEMO_JOBS,
                    feeds=(watchers.sio, Both()),
                    recovery_s=recovery,
                )
            )
            assert watchers.sio.reconnects >= 1
        finally:
            ws2.close()
