"""The reaper: declares the runs of lost runners SYSTEM_ERROR, and forgets long-gone runners.

A runner renews its claims every few seconds (:mod:`snakedeck.store.claims`). A claim whose
lease ran out belongs to a runner that is dead or cut off: the reaper takes the claim over (so
the old owner is fenced off), ends the run as ``SYSTEM_ERROR`` with the reason, settles its
open jobs, and tells the gateways and the notifier. Any number of reapers may run (one per
consumer); the claim's compare-and-set makes each declaration happen once.

After the store itself was unreachable, every runner failed to renew; the reaper waits until it
has seen the store up for a whole lease before it judges anyone, so runners get the time to
renew first.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Final

from snakedeck import envelope, metrics, notify, projection
from snakedeck.bus.base import Bus, BusError, Outgoing
from snakedeck.messages import PersistedUpdate
from snakedeck.states import RunState
from snakedeck.store import Store, StoreError
from snakedeck.store.claims import LEASE_SECONDS, REAPER, Claim

log = logging.getLogger(__name__)

SWEEP_SECONDS: Final = 10.0
FORGET_RUNNERS_AFTER: Final = 3600.0
"""A runner not heard of for this long drops out of ``/readyz``."""
TOMBSTONE_LEASE: Final = 10 * 365 * 86400.0
"""The reaper's claim on a lost run never expires: the run must not be claimed again."""


class Reaper:
    def __init__(self, store: Store, bus: Bus, *, lease: float = LEASE_SECONDS) -> None:
        self.store = store
        self.bus = bus
        self.lease = lease
        self.interval = min(SWEEP_SECONDS, lease / 3)
        self.declared: list[str] = []
        """Runs this reaper declared lost (tests and logs read it)."""
        self._store_up_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except StoreError as exc:
                self._store_up_since = None
                log.warning("reaper: store unavailable (%s); runners are not judged now", exc)
            except Exception:
                log.exception("reaper: sweep failed")

    def sweep(self, now: float | None = None) -> list[str]:
        """Declare every run whose claim expired lost; returns their ids."""
        now = time.time() if now is None else now
        self.store.ping()
        if self._store_up_since is None:
            self._store_up_since = now
        if now - self._store_up_since < self.lease:
            return []  # runners may not have renewed since the store came back
        declared = []
        for claim in self.store.expired_claims(now):
            run_id = self._declare(claim, now)
            if run_id is not None:
                declared.append(run_id)
        self.store.forget_runners(now - FORGET_RUNNERS_AFTER)
        return declared

    def _declare(self, claim: Claim, now: float) -> str | None:
        taken = self.store.take_over(
            claim.run_id,
            expected_epoch=claim.epoch,
            runner_id=REAPER,
            host=socket.gethostname(),
            now=now,
            lease=TOMBSTONE_LEASE,
        )
        if taken is None:
            return None  # renewed or taken meanwhile
        silent = now - claim.expires_at + self.lease
        reason = (
            f"runner {claim.runner_id} was lost: no heartbeat for {silent:.0f} s "
            "(its host or its connection to the store went away)"
        )
        ended = self.store.declare_end(
            claim.run_id,
            RunState.SYSTEM_ERROR,
            reason,
            by=REAPER,
            fence=taken.epoch,
            at=envelope.iso_from_epoch(now),
        )
        if ended is None:  # it had ended; only its claim was left behind
            self.store.finish_claim(claim.run_id, REAPER)
            return None
        log.error("run %s: %s", claim.run_id, reason)
        metrics.RUNS_LOST.inc()
        self.declared.append(claim.run_id)
        update: PersistedUpdate = {
            "kind": "persisted",
            "events": [],
            "runs": [projection.run_summary(r) for r in ended.runs],
            "jobs": [projection.job_summary(j) for j in ended.jobs],
        }
        try:
            self.bus.publish_update(dict(update))
        except BusError as exc:
            log.warning("reaper: could not announce run %s (%s)", claim.run_id, exc)
        self._notify(claim.run_id, reason, taken.epoch)
        return claim.run_id

    def _notify(self, run_id: str, reason: str, epoch: int) -> None:
        """Hand the declared end to the notifier (its queue is durable; the event is not one
        of the run's own, so the persist queue never sees it)."""
        key, event = notify.declared_state(run_id, RunState.SYSTEM_ERROR.value, reason, epoch=epoch)
        message = Outgoing(key, dict(event), envelope.message_id(event))
        try:
            self.bus.publish_events([message])
        except BusError as exc:
            log.warning("reaper: could not notify the end of run %s (%s)", run_id, exc)
