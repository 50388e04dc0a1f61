"""Run claims and the runner registry in MongoDB: atomic single-document operations only.

A claim is one document (``_id`` = run id): creating it is an insert that a second claimant
loses on the duplicate key; a takeover is ``find_one_and_update`` on ``{_id, epoch}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snakedeck.store.claims import (
    LEASE_SECONDS,
    REAPER,
    Claim,
    ClaimOutcome,
    ClaimResult,
    ClaimStore,
    RunnerBeat,
)
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors


def _claim(doc: dict[str, Any]) -> Claim:
    return Claim(
        str(doc["_id"]),
        str(doc["runner_id"]),
        int(doc["epoch"]),
        float(doc["expires_at"]),
        str(doc.get("host") or ""),
        bool(doc.get("finished")),
    )


LIVE = {"finished": {"$ne": True}}


class MongoClaims(MongoConnection, ClaimStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._claims = self._db["claims"]
        self._runners = self._db["runners"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP

        super()._create_schema()
        self._claims.create_index([("runner_id", UP)])
        self._claims.create_index([("expires_at", UP)])
        self._runners.create_index([("seen_at", UP)])

    @mongo_errors
    def claim_run(
        self, run_id: str, runner_id: str, *, host: str, now: float, lease: float = LEASE_SECONDS
    ) -> ClaimResult:
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        fresh = {"_id": run_id, "runner_id": runner_id, "host": host, "epoch": 1}
        try:
            self._claims.insert_one({**fresh, "expires_at": now + lease})
            return ClaimResult(ClaimOutcome.CLAIMED, _claim({**fresh, "expires_at": now + lease}))
        except DuplicateKeyError:
            pass
        mine = self._claims.find_one_and_update(
            {"_id": run_id, "runner_id": runner_id, **LIVE},
            {"$set": {"expires_at": now + lease, "host": host}},
            return_document=ReturnDocument.AFTER,
        )
        if mine is not None:
            return ClaimResult(ClaimOutcome.CLAIMED, _claim(mine))
        held = self._claims.find_one({"_id": run_id})
        if held is None:  # released between our two steps: try once more from the start
            return self.claim_run(run_id, runner_id, host=host, now=now, lease=lease)
        claim = _claim(held)
        if claim.finished:
            return ClaimResult(ClaimOutcome.FINISHED, claim)
        outcome = ClaimOutcome.EXPIRED if claim.expired(now) else ClaimOutcome.HELD
        return ClaimResult(outcome, claim)

    @mongo_errors
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
        from pymongo import ReturnDocument

        doc = self._claims.find_one_and_update(
            {"_id": run_id, "epoch": expected_epoch, **LIVE},
            {
                "$set": {"runner_id": runner_id, "host": host, "expires_at": now + lease},
                "$inc": {"epoch": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _claim(doc)

    @mongo_errors
    def renew_claims(
        self, runner_id: str, run_ids: Iterable[str], *, now: float, lease: float = LEASE_SECONDS
    ) -> set[str]:
        wanted = list(run_ids)
        if not wanted:
            return set()
        query = {"runner_id": runner_id, "_id": {"$in": wanted}, **LIVE}
        self._claims.update_many(query, {"$set": {"expires_at": now + lease}})
        return {str(d["_id"]) for d in self._claims.find(query, {"_id": 1})}

    @mongo_errors
    def finish_claim(self, run_id: str, runner_id: str) -> None:
        self._claims.update_one(
            {"_id": run_id, "runner_id": runner_id}, {"$set": {"finished": True}}
        )

    @mongo_errors
    def reopen_claim(
        self, run_id: str, runner_id: str, *, now: float, lease: float = LEASE_SECONDS
    ) -> Claim | None:
        from pymongo import ReturnDocument

        doc = self._claims.find_one_and_update(
            {"_id": run_id, "runner_id": runner_id, "finished": True},
            {"$set": {"finished": False, "expires_at": now + lease}, "$inc": {"epoch": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _claim(doc)

    @mongo_errors
    def release_claim(self, run_id: str, runner_id: str) -> None:
        self._claims.delete_one({"_id": run_id, "runner_id": runner_id})

    @mongo_errors
    def get_claim(self, run_id: str) -> Claim | None:
        doc = self._claims.find_one({"_id": run_id})
        return None if doc is None else _claim(doc)

    @mongo_errors
    def claims_of(self, runner_id: str) -> list[Claim]:
        found = self._claims.find({"runner_id": runner_id, **LIVE}).sort("_id", 1)
        return [_claim(d) for d in found]

    @mongo_errors
    def expired_claims(self, now: float, *, limit: int = 100) -> list[Claim]:
        cursor = (
            self._claims.find({"expires_at": {"$lt": now}, "runner_id": {"$ne": REAPER}, **LIVE})
            .sort("expires_at", 1)
            .limit(limit)
        )
        return [_claim(d) for d in cursor]

    @mongo_errors
    def record_beat(self, beat: RunnerBeat) -> None:
        doc = beat.to_doc()
        self._runners.replace_one(
            {"_id": beat.runner_id}, {"_id": beat.runner_id, **doc}, upsert=True
        )

    @mongo_errors
    def runner_beats(self) -> list[RunnerBeat]:
        return [
            RunnerBeat.from_doc(d) for d in self._runners.find({}, {"_id": 0}).sort("runner_id", 1)
        ]

    @mongo_errors
    def forget_runners(self, seen_before: float) -> int:
        return int(self._runners.delete_many({"seen_at": {"$lt": seen_before}}).deleted_count)
