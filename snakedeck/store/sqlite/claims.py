"""Run claims and the runner registry in SQLite (each operation one immediate transaction)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from snakedeck.store.claims import (
    LEASE_SECONDS,
    REAPER,
    Claim,
    ClaimOutcome,
    ClaimResult,
    ClaimStore,
    RunnerBeat,
)
from snakedeck.store.sqlite.connection import SqliteConnection, dumps

SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    run_id     TEXT PRIMARY KEY,
    runner_id  TEXT NOT NULL,
    host       TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    finished   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS claims_runner ON claims (runner_id);
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at);
CREATE TABLE IF NOT EXISTS runners (
    runner_id TEXT PRIMARY KEY,
    seen_at   REAL NOT NULL,
    doc       TEXT NOT NULL
);
"""

COLUMNS = "run_id, runner_id, epoch, expires_at, host, finished"
ADDED_COLUMNS = (("claims", "finished", "INTEGER NOT NULL DEFAULT 0"),)


def _claim(row: tuple) -> Claim:
    return Claim(row[0], row[1], int(row[2]), float(row[3]), row[4], bool(row[5]))


class SqliteClaims(SqliteConnection, ClaimStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._add_columns(ADDED_COLUMNS)
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "claims", "runners")

    def claim_run(
        self, run_id: str, runner_id: str, *, host: str, now: float, lease: float = LEASE_SECONDS
    ) -> ClaimResult:
        with self._tx() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM claims WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO claims (run_id, runner_id, host, epoch, expires_at)"
                    " VALUES (?, ?, ?, 1, ?)",
                    (run_id, runner_id, host, now + lease),
                )
                return ClaimResult(
                    ClaimOutcome.CLAIMED, Claim(run_id, runner_id, 1, now + lease, host)
                )
            held = _claim(row)
            if held.finished:
                return ClaimResult(ClaimOutcome.FINISHED, held)
            if held.runner_id == runner_id:
                db.execute(
                    "UPDATE claims SET expires_at = ?, host = ? WHERE run_id = ?",
                    (now + lease, host, run_id),
                )
                renewed = Claim(run_id, runner_id, held.epoch, now + lease, host)
                return ClaimResult(ClaimOutcome.CLAIMED, renewed)
        outcome = ClaimOutcome.EXPIRED if held.expired(now) else ClaimOutcome.HELD
        return ClaimResult(outcome, held)

    def take_over(
        self,
        run_id: str,
        *,
        expected_epoch: int,
        runner_id: str,
        host: str,
        now: float,
        lease: float = LEASE_SECONDS,
    ) -> Claim | None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE claims SET runner_id = ?, host = ?, epoch = epoch + 1, expires_at = ?"
                " WHERE run_id = ? AND epoch = ? AND finished = 0",
                (runner_id, host, now + lease, run_id, expected_epoch),
            )
            if cur.rowcount != 1:
                return None
        return Claim(run_id, runner_id, expected_epoch + 1, now + lease, host)

    def renew_claims(
        self, runner_id: str, run_ids: Iterable[str], *, now: float, lease: float = LEASE_SECONDS
    ) -> set[str]:
        wanted = list(run_ids)
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self._tx() as db:
            db.execute(
                f"UPDATE claims SET expires_at = ? WHERE runner_id = ? AND finished = 0"
                f" AND run_id IN ({marks})",
                (now + lease, runner_id, *wanted),
            )
            rows = db.execute(
                f"SELECT run_id FROM claims WHERE runner_id = ? AND finished = 0"
                f" AND run_id IN ({marks})",
                (runner_id, *wanted),
            ).fetchall()
        return {r for (r,) in rows}

    def finish_claim(self, run_id: str, runner_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE claims SET finished = 1 WHERE run_id = ? AND runner_id = ?",
                (run_id, runner_id),
            )

    def reopen_claim(
        self, run_id: str, runner_id: str, *, now: float, lease: float = LEASE_SECONDS
    ) -> Claim | None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE claims SET finished = 0, epoch = epoch + 1, expires_at = ?"
                " WHERE run_id = ? AND runner_id = ? AND finished = 1",
                (now + lease, run_id, runner_id),
            )
            if cur.rowcount != 1:
                return None
            row = db.execute(f"SELECT {COLUMNS} FROM claims WHERE run_id = ?", (run_id,)).fetchone()
        return _claim(row)

    def release_claim(self, run_id: str, runner_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM claims WHERE run_id = ? AND runner_id = ?", (run_id, runner_id))

    def get_claim(self, run_id: str) -> Claim | None:
        with self._read() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM claims WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _claim(row)

    def claims_of(self, runner_id: str) -> list[Claim]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM claims WHERE runner_id = ? AND finished = 0"
                " ORDER BY run_id",
                (runner_id,),
            ).fetchall()
        return [_claim(r) for r in rows]

    def expired_claims(self, now: float, *, limit: int = 100) -> list[Claim]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM claims WHERE expires_at < ? AND runner_id != ?"
                " AND finished = 0 ORDER BY expires_at LIMIT ?",
                (now, REAPER, limit),
            ).fetchall()
        return [_claim(r) for r in rows]

    def record_beat(self, beat: RunnerBeat) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runners (runner_id, seen_at, doc) VALUES (?, ?, ?)"
                " ON CONFLICT (runner_id) DO UPDATE SET seen_at = excluded.seen_at,"
                " doc = excluded.doc",
                (beat.runner_id, beat.seen_at, dumps(beat.to_doc())),
            )

    def runner_beats(self) -> list[RunnerBeat]:
        with self._read() as db:
            rows = db.execute("SELECT doc FROM runners ORDER BY runner_id").fetchall()
        return [RunnerBeat.from_doc(json.loads(doc)) for (doc,) in rows]

    def forget_runners(self, seen_before: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM runners WHERE seen_at < ?", (seen_before,)).rowcount
