"""The runner's artefact shipper on the real SQLite store and in-process bus: what it takes
from the run's directory into the store, what it publishes live, and that a restarted
runner neither loses nor repeats a byte."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.results import Results
from runner.shipper import ArtefactShipper, utf8_cut
from snakedeck import envelope
from snakedeck.bus.local import LocalBus
from snakedeck.rundir import RunDir, run_dir
from snakedeck.spool import SpoolWriter
from snakedeck.store.errors import StoreError
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import ResultSpec
from tests.support.services import unique_namespace
from tests.support.waiting import wait_for

RUN = "r-ship"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "store" / "s.db")
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def bus() -> Iterator[LocalBus]:
    bus = LocalBus(unique_namespace())
    yield bus
    bus.close()


@pytest.fixture
def rd(tmp_path: Path) -> RunDir:
    return run_dir(tmp_path / "runner" / "runs", RUN).create()


class Updates:
    def __init__(self, bus: LocalBus) -> None:
        self.logs: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.sub = bus.consume_updates(self.take)

    def take(self, deliveries: Any) -> None:
        with self.lock:
            for d in deliveries:
                self.logs += d.json().get("logs", [])


def shipper(rd: RunDir, store: SqliteStore, bus: LocalBus, emitted: list) -> ArtefactShipper:
    ship = ArtefactShipper(RUN, rd, store, bus, lambda e: emitted.append(e) or True,
                           max_result=10_000)  # fmt: skip
    ship.set_results(Results(rd.work, (ResultSpec("out/*.tsv", "table"),)))
    return ship


def spool(rd: RunDir, kind: str, **data: Any) -> None:
    with SpoolWriter(rd.spool) as writer:
        writer.append(envelope.make(RUN, kind, data=data, msg=f"{kind} {data.get('jobid', '')}"))


def stored(store: SqliteStore, stream: str) -> bytes:
    part = store.read_log(RUN, stream, 0, 10**6)
    return b"" if part is None else part.data


def test_logs_go_to_the_store_whole_lines_first_and_live(
    rd: RunDir, store: SqliteStore, bus: LocalBus
) -> None:
    updates = Updates(bus)
    emitted: list = []
    rd.log.write_bytes(b"Building DAG of jobs...\nhalf a li")
    ship = shipper(rd, store, bus, emitted)
    ship.round()
    assert stored(store, "snakemake") == b"Building DAG of jobs...\n"  # the half line waits
    (rd.work / "logs").mkdir()
    (rd.work / "logs" / "a.log").write_text("a starts\n")
    spool(rd, "job_info", jobid=3, rule_name="a", log=["logs/a.log"], output=["out/a.tsv"],
          shellcmd="run a")  # fmt: skip
    ship.round()
    assert stored(store, "job/3/1/logs/a.log") == b"a starts\n"
    ship.stop()
    wanted = {
        ("snakemake", 0, "Building DAG of jobs...\n"),
        ("job/3/1/logs/a.log", 0, "a starts\n"),
    }

    def live() -> set[tuple]:
        with updates.lock:
            return {(c["stream"], c["offset"], c["text"]) for c in updates.logs}

    wait_for(lambda: wanted <= live(), 10, "both chunks on the updates fanout")
    updates.sub.stop()


def test_a_restarted_shipper_goes_on_where_the_store_ends_and_a_failure_gets_its_text(
    rd: RunDir, store: SqliteStore, bus: LocalBus
) -> None:
    emitted: list = []
    rd.log.write_text("[Tue Dec  1 23:10:58 2026]\nlocalrule a:\n    jobid: 3\n")
    spool(rd, "job_info", jobid=3, rule_name="a", log=[], output=["out/a.tsv"],
          shellcmd="run a")  # fmt: skip
    first = shipper(rd, store, bus, emitted)
    first.round()
    with rd.log.open("a") as log:
        log.write("a: cannot open reads.fq\n[Tue Dec  1 23:11:00 2026]\nError in rule a:\n")
        log.write("    jobid: 3\n    output: out/a.tsv\n")
    again = shipper(rd, store, bus, emitted)  # the runner restarted
    spool(rd, "error", exception="RuleException")
    spool(rd, "job_error", jobid=3, rule_name="a", log=[], shellcmd="run a")
    again.finish_attempt(deadline=float("inf"))
    assert stored(store, "snakemake") == rd.log.read_bytes()  # whole, nothing twice
    (failure,) = [e for e in emitted if e["type"] == "job_failure"]
    assert failure["data"]["jobid"] == "3" and failure["data"]["attempt"] == 1
    assert failure["data"]["text"] == "a: cannot open reads.fq"
    spool(rd, "job_failure", **failure["data"])
    third = shipper(rd, store, bus, emitted)
    third.finish_attempt(deadline=float("inf"))
    assert len([e for e in emitted if e["type"] == "job_failure"]) == 1  # written once


def test_results_are_stored_as_their_job_finishes_and_after_the_run(
    rd: RunDir, store: SqliteStore, bus: LocalBus
) -> None:
    (rd.work / "out").mkdir()
    (rd.work / "out" / "a.tsv").write_text("a\t1\n")
    (rd.work / "out" / "late.tsv").write_text("late\t2\n")
    (rd.work / "out" / "ignored.txt").write_text("not a result")
    spool(rd, "job_info", jobid=3, rule_name="a", output=["out/a.tsv"], shellcmd="x")
    spool(rd, "job_finished", job_id=3)
    ship = shipper(rd, store, bus, [])
    ship.round()
    (doc,) = store.list_outputs(RUN)
    assert (doc["path"], doc["jobid"], doc["kind"], doc["size"]) == ("out/a.tsv", "3", "table", 4)
    ship.finish_attempt(deadline=float("inf"))
    assert [o["path"] for o in store.list_outputs(RUN)] == ["out/a.tsv", "out/late.tsv"]
    with store.open_blob(store.get_output(RUN, "out/late.tsv")["sha256"]) as f:
        assert f.read() == b"late\t2\n"


class StoreThatGoesAway(SqliteStore):
    """The real SQLite store, made unreachable on demand: what a cut-off MongoDB answers."""

    down = False
    calls_while_down = 0

    def _maybe_down(self) -> None:
        if self.down:
            self.calls_while_down += 1
            raise StoreError("the store is unreachable (test)")

    def log_stream(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_down()
        return super().log_stream(*args, **kwargs)

    def append_log(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_down()
        return super().append_log(*args, **kwargs)


def test_with_the_store_away_a_round_tries_it_once_not_once_per_ended_job(
    rd: RunDir, bus: LocalBus, tmp_path: Path
) -> None:
    """Each try costs the store's whole timeout (5 s for MongoDB): one per ended job held a
    run's end up for most of a minute."""
    store = StoreThatGoesAway(tmp_path / "away" / "s.db")
    store.ensure_schema()
    ship = shipper(rd, store, bus, [])
    (rd.work / "logs").mkdir()
    for jobid in range(1, 6):
        (rd.work / "logs" / f"{jobid}.log").write_text(f"job {jobid} ran\n")
        spool(rd, "job_info", jobid=jobid, rule_name="a", log=[f"logs/{jobid}.log"],
              output=[], shellcmd="x")  # fmt: skip
        spool(rd, "job_finished", job_id=jobid)
    store.down = True
    ship.round()
    assert store.calls_while_down == 1
    ship.finish_attempt(deadline=float("inf"))  # backing off: Snakemake's end is not held up
    assert store.calls_while_down == 1
    store.down = False

    def all_shipped() -> bool:
        ship.round()
        return all(stored(store, f"job/{j}/1/logs/{j}.log") == f"job {j} ran\n".encode()
                   for j in range(1, 6))  # fmt: skip

    wait_for(all_shipped, 30, "every job's log once the store is back")
    store.close()


def test_a_cut_never_splits_a_character() -> None:
    data = "ab€".encode()  # € is 3 bytes
    assert utf8_cut(data, 3) == 2 and utf8_cut(data, 5) == 5 and utf8_cut(data, 10) == 5
