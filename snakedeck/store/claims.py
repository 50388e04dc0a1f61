"""Run claims and the runner registry: how each run is executed once, and a lost runner noticed.

A runner **claims** a run in the store before it starts Snakemake. The claim names the runner
and carries an **epoch** and a lease that the runner's heartbeat renews. Whoever else meets the
run (a redelivered submit command after a broker restart, a second runner) sees the claim and
leaves the run alone; a claim whose lease ran out is taken over only by the same runner identity
(the one whose run directory holds the run, restarted) or by the reaper, which declares the run
lost. Every takeover raises the epoch, and the run's lifecycle events carry the epoch they were
written under, so a fenced-off owner coming back cannot change the run's state
(:mod:`snakedeck.projection`).

The registry keeps each runner's last heartbeat, so every gateway can tell live runners from
lost ones, whichever process received the heartbeat.

Times are seconds since the epoch on the writer's clock: hosts must keep their clocks in sync
(NTP) to well within :data:`LEASE_SECONDS`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final

LEASE_SECONDS: Final = 30.0
"""How long a claim holds without renewal; heartbeats renew it every few seconds."""
REAPER: Final = "reaper"
"""The owner a lost run's claim passes to when the reaper declares it lost."""


@dataclass(frozen=True)
class Claim:
    run_id: str
    runner_id: str
    epoch: int
    expires_at: float
    host: str = ""
    finished: bool = False
    """The run ended here and every event of it was delivered: the claim stays as the record
    that the run was executed, so a late copy of its submit command starts nothing."""

    def expired(self, now: float) -> bool:
        return self.expires_at < now


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    """The run is this runner's now (new claim, or its own claim renewed)."""
    HELD = "held"
    """Another runner holds a live claim: leave the run alone."""
    EXPIRED = "expired"
    """Another runner's claim ran out: only the reaper acts on it."""
    FINISHED = "finished"
    """The run was executed and ended (by whichever runner): nothing more to do."""


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    claim: Claim


@dataclass
class RunnerBeat:
    """What a runner's heartbeat records in the registry."""

    runner_id: str
    host: str
    seen_at: float
    started_at: float
    runs: list[str] = field(default_factory=list)
    max_runs: int = 0
    version: str = ""

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RunnerBeat:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in doc.items() if k in names})


class ClaimStore(abc.ABC):
    """Claims on runs and the runner registry (each backend makes these operations atomic)."""

    @abc.abstractmethod
    def claim_run(
        self, run_id: str, runner_id: str, *, host: str, now: float, lease: float = LEASE_SECONDS
    ) -> ClaimResult:
        """Claim an unclaimed run (epoch 1), or renew this runner's own claim; otherwise report
        who holds it and whether that claim is still live."""

    @abc.abstractmethod
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
        """Move the claim to ``runner_id`` with the next epoch, if it still has
        ``expected_epoch`` (compare-and-set); ``None`` if someone else moved it first."""

    @abc.abstractmethod
    def renew_claims(
        self, runner_id: str, run_ids: Iterable[str], *, now: float, lease: float = LEASE_SECONDS
    ) -> set[str]:
        """Extend this runner's claims on these runs; returns the ones it still holds (a run
        missing from the answer was taken over: its runner must stop acting on it)."""

    @abc.abstractmethod
    def finish_claim(self, run_id: str, runner_id: str) -> None:
        """Mark this runner's claim finished: the run ended here and every event is delivered.
        The claim is kept, so the run is never claimed, and so never executed, again."""

    @abc.abstractmethod
    def reopen_claim(
        self, run_id: str, runner_id: str, *, now: float, lease: float = LEASE_SECONDS
    ) -> Claim | None:
        """Take a finished claim up again, with the next epoch, for the runner that finished it
        (a resume in the same work directory); ``None`` if it is not finished or not its own."""

    @abc.abstractmethod
    def release_claim(self, run_id: str, runner_id: str) -> None:
        """Drop this runner's claim entirely (a claim on a run that no longer exists)."""

    @abc.abstractmethod
    def get_claim(self, run_id: str) -> Claim | None: ...

    @abc.abstractmethod
    def claims_of(self, runner_id: str) -> list[Claim]:
        """Every unfinished claim this runner holds (what a restarted runner must recover)."""

    @abc.abstractmethod
    def expired_claims(self, now: float, *, limit: int = 100) -> list[Claim]:
        """Unfinished claims whose lease ran out, oldest first, excluding the reaper's own."""

    # -- the runner registry --------------------------------------------------------------------
    @abc.abstractmethod
    def record_beat(self, beat: RunnerBeat) -> None: ...

    @abc.abstractmethod
    def runner_beats(self) -> list[RunnerBeat]: ...

    @abc.abstractmethod
    def forget_runners(self, seen_before: float) -> int:
        """Remove runners not heard of since ``seen_before``; returns how many."""
