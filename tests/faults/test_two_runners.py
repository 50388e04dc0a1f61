"""Two runners and a broker restart: the broker hands each runner's unacknowledged submit
commands to whoever listens when it comes back. The claims in the store keep every run with the
runner that holds it: no run is killed by the other runner, none is executed twice, each has one
terminal state, whether the runners share a DATA_DIR or not."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import DEMO_JOBS, demo_config
from tests.support.waiting import wait_for


@pytest.mark.parametrize("data_dirs", ["shared", "separate"])
def test_two_runners_through_a_broker_restart(deployment_on, own_broker, record, data_dirs) -> None:
    d = deployment_on(own_broker.url, max_runs=2)
    d.consumer()
    shared = d.tmp / "runners" if data_dirs == "shared" else None
    d.runner("runner-a", data_dir=shared or d.tmp / "runner-a")
    d.runner("runner-b", data_dir=shared or d.tmp / "runner-b")
    d.gateway()
    d.wait_runners(2)
    runs = [d.submit(demo_config(samples=60, sleep=0.2)) for _ in range(4)]
    wait_for(
        lambda: sum(d.run(r).get("state") == "RUNNING" for r in runs) >= 3,
        120,
        "the runs to be running on both runners",
    )
    own_broker.stop()
    time.sleep(8)
    own_broker.start()
    holders = {r: (d.store.get_claim(r) or None) for r in runs}
    for run_id in runs:
        figures = d.verify(
            f"2 runners + broker restart, {data_dirs} DATA_DIR",
            run_id,
            expected_state="COMPLETE",
            expected_jobs=DEMO_JOBS,
        )
        run = d.run(run_id)
        assert not run.get("anomalies"), run.get("anomalies")
        record(figures)
    owners = {c.runner_id for c in holders.values() if c is not None}
    assert len(owners) == 2, f"the runs were not spread over both runners: {holders}"
