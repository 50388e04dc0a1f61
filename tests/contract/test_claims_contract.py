"""Run claims and the runner registry, against every store backend: one owner per run, takeovers
that happen once, and a lost run declared once with its open jobs settled."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from consumer.reaper import Reaper
from snakedeck.bus.local import LocalBus
from snakedeck.states import RunState
from snakedeck.store import JobFilter, Store, open_store
from snakedeck.store.claims import REAPER, ClaimOutcome, RunnerBeat
from tests.support.events import persist, synthetic_run
from tests.support.services import unique_namespace


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.close()


def test_a_run_has_one_owner_until_its_lease_runs_out(store: Store) -> None:
    first = store.claim_run("r1", "a", host="h1", now=100.0, lease=30)
    assert first.outcome == ClaimOutcome.CLAIMED and first.claim.epoch == 1
    assert store.claim_run("r1", "b", host="h2", now=110.0).outcome == ClaimOutcome.HELD
    again = store.claim_run("r1", "a", host="h1", now=120.0, lease=30)
    assert again.outcome == ClaimOutcome.CLAIMED and again.claim.expires_at == 150.0
    late = store.claim_run("r1", "b", host="h2", now=151.0)
    assert late.outcome == ClaimOutcome.EXPIRED and late.claim.runner_id == "a"
    assert store.get_claim("r1") == again.claim


def test_only_one_of_many_concurrent_claimants_wins(store: Store) -> None:
    results = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        got = store.claim_run("race", name, host="h", now=1.0)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = {r.claim.runner_id for r in results if r.outcome == ClaimOutcome.CLAIMED}
    assert len(winners) == 1
    assert all(r.claim.runner_id in winners for r in results)


def test_takeover_is_compare_and_set_on_the_epoch(store: Store) -> None:
    store.claim_run("r1", "a", host="h", now=0.0, lease=10)
    taken = store.take_over("r1", expected_epoch=1, runner_id=REAPER, host="x", now=20.0)
    assert taken is not None and taken.epoch == 2 and taken.runner_id == REAPER
    assert store.take_over("r1", expected_epoch=1, runner_id="c", host="x", now=20.0) is None
    # The old owner's renewal no longer holds the run, and it cannot claim it back.
    assert store.renew_claims("a", ["r1"], now=21.0) == set()
    assert store.claim_run("r1", "a", host="h", now=21.0).outcome == ClaimOutcome.HELD


def test_renew_release_and_the_claims_of_a_runner(store: Store) -> None:
    for run in ("r1", "r2", "r3"):
        store.claim_run(run, "a", host="h", now=0.0, lease=10)
    store.claim_run("r4", "b", host="h", now=0.0, lease=10)
    assert store.renew_claims("a", ["r1", "r2", "r4"], now=5.0, lease=10) == {"r1", "r2"}
    assert [c.run_id for c in store.expired_claims(12.0)] == ["r3", "r4"]
    store.release_claim("r3", "a")
    store.release_claim("r4", "a")  # not a's: stays
    assert [c.run_id for c in store.claims_of("a")] == ["r1", "r2"]
    assert store.get_claim("r4") is not None and store.get_claim("r3") is None


def test_the_runner_registry_keeps_the_last_beat_and_forgets_old_runners(store: Store) -> None:
    store.record_beat(RunnerBeat("a", "h1", seen_at=10.0, started_at=1.0, runs=["r1"]))
    store.record_beat(RunnerBeat("a", "h1", seen_at=20.0, started_at=1.0, runs=[]))
    store.record_beat(RunnerBeat("b", "h2", seen_at=5.0, started_at=2.0, runs=["r9"], max_runs=4))
    beats = {b.runner_id: b for b in store.runner_beats()}
    assert beats["a"].seen_at == 20.0 and beats["a"].runs == []
    assert beats["b"].max_runs == 4
    assert store.forget_runners(seen_before=10.0) == 1
    assert [b.runner_id for b in store.runner_beats()] == ["a"]


def test_the_reaper_declares_a_lost_run_once_and_settles_its_jobs(store: Store) -> None:
    run = synthetic_run("lost", samples=4)
    cut = next(i for i, e in enumerate(run.events) if e["type"] == "job_finished") + 6
    persist(store, run.events[:cut])  # running, some jobs open
    store.claim_run("lost", "dead-runner", host="h", now=0.0, lease=30)
    bus = LocalBus(unique_namespace())
    updates = []
    sub = bus.consume_updates(lambda ds: updates.extend(d.json() for d in ds))
    try:
        reaper = Reaper(store, bus, lease=30)
        assert reaper.sweep(now=10.0) == []  # the store was just seen up: give runners a lease
        assert reaper.sweep(now=20.0) == []  # the claim holds until 30
        assert reaper.sweep(now=41.0) == ["lost"]
        assert reaper.sweep(now=60.0) == []  # once
    finally:
        sub.stop()
        bus.close()
    doc = store.get_run("lost")
    assert doc["state"] == RunState.SYSTEM_ERROR and "dead-runner was lost" in doc["state_reason"]
    states = {j["state"] for j in store.list_jobs("lost", JobFilter()).items}
    assert states <= {"done", "cancelled"}
    assert doc["progress"]["pending"] == 0 and doc["progress"]["running"] == 0
    assert doc["progress"]["not_run"] > 0
    # The fenced-off runner's late events are recorded, but cannot end the run a second time.
    persist(store, run.events[cut:])
    doc = store.get_run("lost")
    assert doc["state"] == RunState.SYSTEM_ERROR
    assert any("declared" in a["problem"] for a in doc["anomalies"])
    assert (
        store.claim_run("lost", "dead-runner", host="h", now=70.0).outcome != ClaimOutcome.CLAIMED
    )


def test_a_finished_claim_is_never_claimed_again_until_its_runner_reopens_it(store: Store) -> None:
    store.claim_run("r1", "a", host="h", now=0.0)
    store.finish_claim("r1", "a")
    for who in ("a", "b"):  # a late copy of the submit command, on either runner
        late = store.claim_run("r1", who, host="h", now=1.0)
        assert late.outcome == ClaimOutcome.FINISHED and late.claim.finished
    assert store.claims_of("a") == [] and store.expired_claims(1e9) == []
    assert store.renew_claims("a", ["r1"], now=2.0) == set()
    assert store.reopen_claim("r1", "b", now=3.0) is None  # only the runner that finished it
    again = store.reopen_claim("r1", "a", now=3.0, lease=30)
    assert again is not None and again.epoch == 2 and not again.finished
    assert store.renew_claims("a", ["r1"], now=4.0) == {"r1"}
    assert store.reopen_claim("r1", "a", now=5.0) is None  # not finished any more
