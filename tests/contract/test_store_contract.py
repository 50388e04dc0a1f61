"""The store contract: every backend (SQLite, MongoDB over the real wire protocol) behaves alike.

Each test runs once per backend through ``open_store``, exactly as the services open it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from snakedeck.envelope import Envelope
from snakedeck.store import (
    BadPageToken,
    JobFilter,
    RunExists,
    RunFilter,
    Store,
    StoreError,
    open_store,
)
from tests.support.events import SyntheticRun, persist, synthetic_run


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.close()


def persist_in_batches(store: Store, events: Sequence[Envelope], rng: random.Random) -> None:
    """Persist ``events`` in random-sized batches, as a consumer's prefetch would cut them."""
    i = 0
    while i < len(events):
        n = rng.randint(1, 12)
        persist(store, events[i : i + n])
        i += n


def without(doc: dict[str, Any] | None, *keys: str) -> dict[str, Any]:
    assert doc is not None
    return {k: v for k, v in doc.items() if k not in keys}


def final_docs(store: Store, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its jobs, minus what differs between two runs with the same history:
    the id itself and ``_rev`` (which counts writes, and replays are writes)."""
    run = without(store.get_run(run_id), "_rev", "run_id")
    jobs = store.list_jobs(run_id, JobFilter(), page_size=1000).items
    return run, [without(j, "run_id") for j in jobs]


def run_doc(run_id: str, submitted_at: str, **fields: Any) -> dict[str, Any]:
    return {"run_id": run_id, "submitted_at": submitted_at, "workflow": "align", **fields}


# -- runs ---------------------------------------------------------------------------------------


def test_create_then_get_returns_the_document_with_initial_projection_fields(store: Store):
    store.create_run(
        run_doc(
            "r1",
            "2026-03-01T10:00:00.000Z",
            state="QUEUED",
            config={"samples": ["a", "b"], "threshold": 0.25},
            tags={"project": "Mouse"},
            user="ada",
        )
    )
    run = store.get_run("r1")
    assert run is not None
    assert "_id" not in run and "_ix" not in run
    assert run["config"] == {"samples": ["a", "b"], "threshold": 0.25}
    assert run["tags"] == {"project": "Mouse"}
    assert run["user"] == "ada"
    assert run["state"] == "QUEUED"
    assert run["progress"]["total"] == 0 and run["rule_counts"] == {}
    assert store.get_run("nope") is None


def test_creating_a_run_twice_raises_run_exists(store: Store):
    store.create_run(run_doc("r1", "2026-03-01T10:00:00.000Z"))
    with pytest.raises(RunExists, match="r1"):
        store.create_run(run_doc("r1", "2026-03-01T11:00:00.000Z"))
    assert store.get_run("r1")["submitted_at"] == "2026-03-01T10:00:00.000Z"


@pytest.fixture
def some_runs(store: Store) -> Store:
    store.create_run(run_doc("alpha", "2026-03-01T10:00:00.000Z", tags={"project": "Mouse"}))
    store.create_run(
        run_doc("beta", "2026-03-01T11:00:00.000Z", workflow="qc", tags={"project": "Fly"})
    )
    store.create_run(run_doc("gamma", "2026-03-01T12:00:00.000Z", tags={"batch": "b7"}))
    store.create_run(run_doc("delta", "2026-03-01T13:00:00.000Z", workflow="a.b"))
    store.update_run("beta", {"state": "RUNNING"})
    store.update_run("gamma", {"state": "COMPLETE"})
    return store


def ids(page) -> list[str]:
    return [r["run_id"] for r in page.items]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (RunFilter(), ["delta", "gamma", "beta", "alpha"]),
        (RunFilter(state="RUNNING"), ["beta"]),
        (RunFilter(state="QUEUED"), ["delta", "alpha"]),
        (RunFilter(workflow="align"), ["gamma", "alpha"]),
        (RunFilter(tag="project"), ["beta", "alpha"]),
        (RunFilter(tag="project=Fly"), ["beta"]),
        (RunFilter(tag="project=fly"), []),
        (RunFilter(q="ALP"), ["alpha"]),
        (RunFilter(q="mouse"), ["alpha"]),
        (RunFilter(q="qc"), ["beta"]),
        (RunFilter(q="a.b"), ["delta"]),
        (RunFilter(q="l.g"), []),
        (RunFilter(q="a"), ["delta", "gamma", "beta", "alpha"]),
        (RunFilter(state="QUEUED", q="lig"), ["alpha"]),
    ],
)
def test_list_runs_filters(some_runs: Store, filters: RunFilter, expected: list[str]):
    page = some_runs.list_runs(filters)
    assert ids(page) == expected
    assert page.total == len(expected)
    assert page.next_page_token is None
    assert all("_id" not in r and "_ix" not in r for r in page.items)


def test_pagination_walks_every_run_once_newest_first_even_while_runs_arrive(store: Store):
    # Ties on submitted_at are ordered by run_id, so the order is total.
    for i in range(23):
        store.create_run(run_doc(f"run-{i:02d}", f"2026-03-01T10:{i // 2:02d}:00.000Z"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.list_runs(RunFilter(), page_size=5, page_token=token)
        assert page.total == 23 + (1 if pages > 0 else 0)
        seen += ids(page)
        pages += 1
        if pages == 1:
            store.create_run(run_doc("newcomer", "2026-03-02T00:00:00.000Z"))
        token = page.next_page_token
        if token is None:
            break
    expected = sorted(
        (f"run-{i:02d}" for i in range(23)),
        key=lambda r: (f"10:{int(r[4:]) // 2:02d}", r),
        reverse=True,
    )
    assert seen == expected
    assert pages == 5


def test_filtered_pagination_counts_only_matches(some_runs: Store):
    first = some_runs.list_runs(RunFilter(workflow="align"), page_size=1)
    assert ids(first) == ["gamma"] and first.total == 2
    second = some_runs.list_runs(
        RunFilter(workflow="align"), page_size=1, page_token=first.next_page_token
    )
    assert ids(second) == ["alpha"] and second.next_page_token is None


@pytest.mark.parametrize("token", ["garbage!", "", "WyJydW5zIl0", "WzEsMiwzXQ"])
def test_a_page_token_not_issued_by_the_store_is_refused(some_runs: Store, token: str):
    if token == "":
        assert ids(some_runs.list_runs(RunFilter(), page_token=token))[0] == "delta"
        return
    with pytest.raises(BadPageToken):
        some_runs.list_runs(RunFilter(), page_token=token)
    with pytest.raises(BadPageToken):
        some_runs.list_jobs("alpha", JobFilter(), page_token=token)


def test_a_jobs_token_is_refused_for_runs_and_for_another_sort(store: Store):
    run = synthetic_run("tok", samples=3)
    persist(store, run.events)
    page = store.list_jobs("tok", JobFilter(), page_size=2)
    assert page.next_page_token
    with pytest.raises(BadPageToken):
        store.list_runs(RunFilter(), page_token=page.next_page_token)
    with pytest.raises(BadPageToken):
        store.list_jobs("tok", JobFilter(), sort="-duration", page_token=page.next_page_token)


def test_count_runs_by_state(some_runs: Store):
    assert some_runs.count_runs_by_state() == {"QUEUED": 2, "RUNNING": 1, "COMPLETE": 1}


def test_update_run_only_in_the_given_states(some_runs: Store):
    rev = some_runs.get_run("beta")["_rev"]
    assert some_runs.update_run("beta", {"cancel_requested": True}, only_states=["QUEUED"]) is False
    assert "cancel_requested" not in some_runs.get_run("beta")
    assert some_runs.update_run(
        "beta", {"cancel_requested": True, "state": "CANCELING"}, only_states=["RUNNING"]
    )
    beta = some_runs.get_run("beta")
    assert beta["cancel_requested"] is True and beta["state"] == "CANCELING"
    assert beta["_rev"] > rev
    assert ids(some_runs.list_runs(RunFilter(state="CANCELING"))) == ["beta"]
    assert some_runs.update_run("missing", {"x": 1}) is False
    with pytest.raises(ValueError, match="run_id"):
        some_runs.update_run("beta", {"run_id": "other"})


def test_a_field_set_by_update_run_survives_later_events(store: Store):
    run = synthetic_run("upd", samples=2)
    store.create_run(run_doc("upd", "2026-03-01T10:00:00.000Z", state="QUEUED"))
    persist(store, run.events[:5])
    assert store.update_run("upd", {"note": "rerun of r0", "tags": {"k": "v"}})
    persist(store, run.events[5:])
    doc = store.get_run("upd")
    assert doc["note"] == "rerun of r0" and doc["state"] == "COMPLETE"
    assert ids(store.list_runs(RunFilter(tag="k=v"))) == ["upd"]


# -- the projection -----------------------------------------------------------------------------


def test_persisting_a_whole_run_gives_the_finished_run_and_its_jobs(store: Store):
    run = synthetic_run("full", samples=5)
    store.create_run(run_doc("full", "2026-03-01T10:00:00.000Z", state="QUEUED"))
    result = persist(store, run.events)
    assert [e["seq"] for e in result.events] == list(range(1, len(run.events) + 1))
    doc = store.get_run("full")
    assert doc["state"] == "COMPLETE"
    assert doc["exit_code"] == 0
    assert doc["progress"]["done"] == doc["progress"]["total"] == run.total == 12
    assert doc["rule_counts"] == run.expected_rule_counts()
    assert doc["rule_counts"]["align"] == {
        "pending": 0, "running": 0, "done": 5, "failed": 0, "cancelled": 0, "not_run": 0,
        "total": 5,
    }  # fmt: skip
    assert doc["last_seq"] == len(run.events)
    assert doc["started_at"] <= doc["finished_at"]
    job = store.get_job("full", "4")
    assert job is not None and "_id" not in job
    assert job["rule"] == "fetch" and job["state"] == "done"
    assert job["wildcards"] == {"sample": "S00003"}
    assert job["log"] == ["logs/fetch/S00003.log"]
    assert job["duration"] > 0
    assert store.get_job("full", "999") is None


def test_a_failing_job_ends_failed_with_its_log_and_the_run_executor_error(store: Store):
    run = synthetic_run("bad", samples=4, fail_job=3)
    persist(store, run.events)
    job = store.get_job("bad", "3")
    assert job["state"] == "failed"
    assert job["log"] == ["logs/fetch/S00002.log"]
    assert job["error"]["msg"] == "Error in rule fetch, jobid: 3"
    doc = store.get_run("bad")
    assert doc["state"] == "EXECUTOR_ERROR" and doc["exit_code"] == 1
    assert doc["progress"]["failed"] == 1
    assert doc["error"].startswith("Exiting because a job execution failed")
    assert store.list_jobs("bad", JobFilter(state="failed")).total == 1


def scenario(name: str) -> SyntheticRun:
    return {
        "complete": lambda: synthetic_run(name, samples=3),
        "failed": lambda: synthetic_run(name, samples=3, fail_job=6),
        "cancelled": lambda: synthetic_run(name, samples=3, cancel_after=4),
    }[name.split("-")[0]]()


@pytest.mark.parametrize("kind", ["complete", "failed", "cancelled"])
def test_replays_shuffles_and_batch_splits_give_identical_documents(store: Store, kind: str):
    reference = scenario(f"{kind}-ref")
    persist(store, reference.events)
    expected = final_docs(store, reference.run_id)
    run, jobs = expected
    assert run["state"] == reference.final_state
    assert {j["jobid"]: j["state"] for j in jobs} == {
        jid: j.expected_state for jid, j in reference.jobs.items() if j.expected_state != "not_run"
    }

    replays: dict[str, SyntheticRun] = {}
    # Everything twice, once in order and once backwards one event at a time.
    twice = replays["twice"] = scenario(f"{kind}-twice")
    persist(store, twice.events)
    for event in reversed(twice.events):
        persist(store, [event])
    for seed in (1, 2, 3):
        shuffled = replays[f"seed{seed}"] = scenario(f"{kind}-seed{seed}")
        rng = random.Random(seed)
        events = list(shuffled.events)
        rng.shuffle(events)
        persist_in_batches(store, events, rng)
        rng.shuffle(events)
        persist_in_batches(store, events[: len(events) // 2], rng)  # a partial redelivery
    for label, replay in replays.items():
        assert final_docs(store, replay.run_id) == expected, label
    assert store.count_events() == len(reference.events) * (1 + len(replays))


def test_a_cancel_leaves_running_jobs_cancelled_and_finished_jobs_done_in_any_order(store: Store):
    for seed in range(4):
        run = synthetic_run(f"c{seed}", samples=4, cancel_after=5)
        events = list(run.events)
        random.Random(seed).shuffle(events)
        persist_in_batches(store, events, random.Random(seed))
        assert store.get_run(run.run_id)["state"] == "CANCELED"
        states = {j["jobid"]: j["state"] for j in store.list_jobs(run.run_id, JobFilter()).items}
        assert sorted(jid for jid, s in states.items() if s == "cancelled") == sorted(
            str(j.jobid) for j in run.jobs_in("cancelled")
        )
        assert sorted(jid for jid, s in states.items() if s == "done") == sorted(
            str(j.jobid) for j in run.jobs_in("done")
        )
        assert run.jobs_in("cancelled") and run.jobs_in("done")


def test_concurrent_writers_of_one_run_lose_nothing(store: Store):
    """Several consumers (threads here) persisting one run while the API updates it."""
    reference = scenario("cancelled-ref")
    persist(store, reference.events)
    expected = final_docs(store, reference.run_id)

    run = scenario("cancelled-race")
    store.create_run(run_doc(run.run_id, "2026-03-01T10:00:00.000Z", state="QUEUED"))
    events = list(run.events)
    random.Random(11).shuffle(events)
    errors: list[BaseException] = []

    def writer(part: list[Envelope], seed: int) -> None:
        try:
            persist_in_batches(store, part, random.Random(seed))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def annotator() -> None:
        try:
            for i in range(10):
                assert store.update_run(run.run_id, {"note": f"n{i}"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(events[i::3], i)) for i in range(3)]
    threads.append(threading.Thread(target=annotator))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    run_doc_, jobs = final_docs(store, run.run_id)
    assert run_doc_.pop("note") == "n9"
    assert run_doc_.pop("submitted_at") and run_doc_.pop("workflow") == "align"
    assert (run_doc_, jobs) == expected


def test_list_events_after_seq_and_limit_in_seq_order(store: Store):
    run = synthetic_run("ev", samples=2)
    events = list(run.events)
    random.Random(7).shuffle(events)
    persist(store, events)
    persist(store, events[:10])
    got = store.list_events("ev", after_seq=5, limit=10)
    assert [e["seq"] for e in got] == list(range(6, 16))
    assert got[0] == run.events[5]
    assert all("_id" not in e for e in got)
    assert [e["seq"] for e in store.list_events("ev")] == list(range(1, len(run.events) + 1))
    assert store.list_events("ev", after_seq=len(run.events)) == []
    assert store.list_events("other") == []
    assert store.count_events() == len(run.events)


# -- jobs ---------------------------------------------------------------------------------------


@pytest.fixture
def jobs_store(store: Store) -> Store:
    persist(store, synthetic_run("jobs", samples=5, cancel_after=7, seed=3).events)
    return store


def job_ids(page) -> list[str]:
    return [j["jobid"] for j in page.items]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (JobFilter(rule="fetch"), ["2", "3", "4", "5", "6"]),
        (JobFilter(state="cancelled"), ["9", "10"]),
        (JobFilter(rule="align", state="done"), ["7", "8"]),
        (JobFilter(q="s00002"), ["3", "8"]),
        (JobFilter(q="ALIGN"), ["7", "8", "9", "10"]),
        (JobFilter(q="10"), ["10"]),
        (JobFilter(q="s0000*"), []),
    ],
)
def test_list_jobs_filters(jobs_store: Store, filters: JobFilter, expected: list[str]):
    page = jobs_store.list_jobs("jobs", filters)
    assert job_ids(page) == expected
    assert page.total == len(expected)


def test_list_jobs_sorts_numerically_and_by_duration_with_unfinished_last(jobs_store: Store):
    assert job_ids(jobs_store.list_jobs("jobs", JobFilter())) == [str(i) for i in range(2, 11)]
    newest = job_ids(jobs_store.list_jobs("jobs", JobFilter(), sort="-jobid"))
    assert newest[:3] == ["10", "9", "8"]
    longest = jobs_store.list_jobs("jobs", JobFilter(), sort="-duration").items
    durations = [j["duration"] for j in longest]
    finished = [d for d in durations if d is not None]
    assert finished == sorted(finished, reverse=True) and len(finished) == 7
    assert durations[7:] == [None, None]
    started = [
        j["started_at"] for j in jobs_store.list_jobs("jobs", JobFilter(), sort="started_at").items
    ]
    assert started == sorted(started)


@pytest.mark.parametrize(
    "sort", ["jobid", "-jobid", "duration", "-duration", "started_at", "-started_at"]
)
def test_job_pages_concatenate_to_the_full_listing(jobs_store: Store, sort: str):
    full = job_ids(jobs_store.list_jobs("jobs", JobFilter(), sort=sort, page_size=100))
    walked: list[str] = []
    token = None
    while True:
        page = jobs_store.list_jobs("jobs", JobFilter(), sort=sort, page_size=3, page_token=token)
        assert page.total == 9
        walked += job_ids(page)
        token = page.next_page_token
        if token is None:
            break
    assert walked == full and len(set(walked)) == 9


def test_an_unknown_sort_or_page_size_is_refused_with_a_clear_message(jobs_store: Store):
    with pytest.raises(ValueError, match="sort 'rule'"):
        jobs_store.list_jobs("jobs", JobFilter(), sort="rule")
    with pytest.raises(ValueError, match="page_size"):
        jobs_store.list_runs(RunFilter(), page_size=0)


# -- opening ------------------------------------------------------------------------------------


def test_open_store_creates_the_data_dir_for_sqlite(settings_factory, tmp_path):
    settings = settings_factory(bus="local", data_dir=tmp_path / "deep" / "dir")
    store = open_store(settings)
    try:
        store.ping()
        assert settings.sqlite_path.exists()
    finally:
        store.close()


def test_an_unreachable_mongodb_fails_with_an_error_naming_the_host(settings_factory):
    from snakedeck.store.mongo import MongoStore

    store = MongoStore("mongodb://127.0.0.1:1/?directConnection=true", "x", timeout_ms=300)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1"):
        store.ping()
    store.close()


def resumed_run(run_id: str) -> list[Envelope]:
    """Attempt 1: job 1 done, job 2 failed, job 3 running at the end, job 4 never started;
    attempt 2 (a resume, seqs going on) runs 2, 3 and 4 and ends COMPLETE."""
    from snakedeck import envelope

    specs: list[tuple[str, dict[str, Any]]] = [
        ("run_state", {"state": "INITIALIZING", "runner": "r-a"}),
        ("run_state", {"state": "RUNNING"}),
        ("run_info", {"stats": {"a": 4, "total": 4}}),
        ("job_info", {"jobid": 1, "rule_name": "a"}),
        ("job_info", {"jobid": 2, "rule_name": "a"}),
        ("job_info", {"jobid": 3, "rule_name": "a"}),
        ("job_finished", {"job_id": 1}),
        ("job_error", {"jobid": 2, "rule_name": "a"}),
        ("job_failure", {"jobid": 2, "message": "boom", "text": "Traceback…"}),
        ("run_state", {"state": "EXECUTOR_ERROR"}),
        ("run_state", {"state": "INITIALIZING", "attempt": 2, "runner": "r-a"}),
        ("run_state", {"state": "RUNNING", "attempt": 2}),
        ("run_info", {"stats": {"a": 3, "total": 3}}),
        ("job_info", {"jobid": 2, "rule_name": "a"}),
        ("job_info", {"jobid": 3, "rule_name": "a"}),
        ("job_info", {"jobid": 4, "rule_name": "a"}),
        ("job_finished", {"job_id": 2}),
        ("job_finished", {"job_id": 3}),
        ("job_finished", {"job_id": 4}),
        ("run_state", {"state": "COMPLETE", "attempt": 2, "exit_code": 0}),
    ]
    events = []
    for seq, (kind, data) in enumerate(specs, start=1):
        source = "runner" if kind in envelope.RUNNER_TYPES else "snakemake"
        events.append(
            envelope.make(run_id, kind, data=data, source=source, seq=seq,
                          ts=f"2026-03-02T09:00:{seq:02d}.000Z")
        )  # fmt: skip
    return events


def test_a_resumed_run_comes_out_the_same_from_any_order(store: Store) -> None:
    reference = resumed_run("res-ref")
    persist(store, reference[:10])
    after_first, first_jobs = final_docs(store, "res-ref")
    assert after_first["state"] == "EXECUTOR_ERROR"
    assert {j["jobid"]: j["state"] for j in first_jobs} == {
        "1": "done", "2": "failed", "3": "cancelled",
    }  # fmt: skip
    assert after_first["progress"]["not_run"] == 1
    assert first_jobs[1]["failure"]["message"] == "boom"
    persist(store, reference[10:])
    expected = final_docs(store, "res-ref")
    run, jobs = expected
    assert run["state"] == "COMPLETE" and run["attempt"] == 2
    assert [a["state"] for a in run["attempts"]] == ["EXECUTOR_ERROR", "COMPLETE"]
    assert {j["jobid"]: j["state"] for j in jobs} == {str(i): "done" for i in range(1, 5)}
    assert run["progress"]["done"] == 4 and run["progress"]["total"] == 4
    assert "failure" not in jobs[1] and jobs[1]["attempt"] == 2
    assert run["rule_durations"]["a"]["count"] == 4
    for seed in range(4):
        run_id = f"res-{seed}"
        events = resumed_run(run_id)
        rng = random.Random(seed)
        rng.shuffle(events)
        persist_in_batches(store, events, rng)
        persist_in_batches(store, events[: len(events) // 3], rng)  # a partial redelivery
        assert final_docs(store, run_id) == expected, seed


def test_the_mongo_store_writes_with_majority_and_retries_and_has_its_indexes(
    settings_factory,
) -> None:
    """Production durability: every write acknowledged by a replica set's majority, retried
    once across a failover, the indexes made at start-up; a URI's own choice wins."""
    settings = settings_factory(backend="mongo", bus="local")
    store = open_store(settings)
    try:
        client = store._client  # type: ignore[attr-defined]
        assert client.write_concern.document == {"w": "majority"}
        assert client.options.retry_writes is True and client.options.retry_reads is True
        store.create_run(run_doc("r-durable", "2026-03-01T10:00:00.000Z"))  # w=majority taken
        assert (store.get_run("r-durable") or {}).get("run_id") == "r-durable"
        names = {ix["name"] for ix in store._db["jobs"].list_indexes()}  # type: ignore[attr-defined]
        assert "duration" in names and "started_at" in names
        names = {ix["name"] for ix in store._db["runs"].list_indexes()}  # type: ignore[attr-defined]
        assert {"newest", "tags"} <= names
    finally:
        store.drop()
        store.close()
    sep = "&" if "?" in settings.mongo_uri else "?"
    own = open_store(settings.with_(mongo_uri=f"{settings.mongo_uri}{sep}w=1&retryWrites=false"))
    try:
        assert own._client.write_concern.document == {"w": 1}  # type: ignore[attr-defined]
        assert own._client.options.retry_writes is False  # type: ignore[attr-defined]
    finally:
        own.drop()
        own.close()
