"""The broker goes away mid-run: stopped and started (a RabbitMQ node of the test's own), or cut
off from the runner through a TCP proxy. Snakemake never waits for it; the spool holds the
events, the durable queues hold the rest, and the run's record ends complete and true."""

from __future__ import annotations

import time

from tests.faults.conftest import DEMO_JOBS, demo_config
from tests.support.tcp_proxy import TcpProxy


def test_the_broker_stopped_and_restarted_mid_run(deployment_on, own_broker, record) -> None:
    d = deployment_on(own_broker.url)
    d.up()
    run_id = d.submit(demo_config())
    with d.watch(run_id) as watchers:
        d.wait_jobs_done(run_id)
        own_broker.stop()
        time.sleep(10)  # Snakemake goes on; the spool keeps what it writes
        own_broker.start()
        recovery = d.caught_up_after(run_id)
        record(
            d.verify(
                "broker stopped 10 s and restarted",
                run_id,
                expected_state="COMPLETE",
                expected_jobs=DEMO_JOBS,
                feeds=watchers.feeds,
                recovery_s=recovery,
            )
        )


def test_the_runner_cut_off_the_broker_through_a_proxy(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker)
    with TcpProxy.for_url(shared_broker) as proxy:
        d.consumer()
        d.runner(amqp_url=proxy.url_for(shared_broker))
        d.gateway()
        d.wait_runners(1)
        run_id = d.submit(demo_config())
        with d.watch(run_id) as watchers:
            d.wait_jobs_done(run_id)
            proxy.cut()
            time.sleep(10)
            proxy.restore()
            recovery = d.caught_up_after(run_id)
            record(
                d.verify(
                    "runner's broker connection cut 10 s",
                    run_id,
                    expected_state="COMPLETE",
                    expected_jobs=DEMO_JOBS,
                    feeds=watchers.feeds,
                    recovery_s=recovery,
                )
            )
