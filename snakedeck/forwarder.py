"""Forward a run's spool to the bus: number events gap-free, publish with confirms, checkpoint.

``seq`` is assigned here, in spool order, continuing from the checkpoint, so a run's events are
numbered 1, 2, 3… with no gap whichever process wrote them. A batch is checkpointed only after
the broker confirmed it, and at most every :data:`CHECKPOINT_EVERY` seconds while events flow (a
checkpoint write cost more than reading and publishing the one or two events a busy poll finds):
a restart resends what was confirmed after the last checkpoint, and a batch that failed is re-read
from the same offset; both get the same seqs again (a duplicate is harmless, a gap is not).
While the broker is down the forwarder retries with exponential back-off; writers only ever
touch the local file, so they never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Final

from snakedeck import envelope
from snakedeck.backoff import Backoff
from snakedeck.bus.base import Bus, BusError, Outgoing
from snakedeck.spool import Checkpoint, SpoolReader, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT_EVERY: Final = 0.5
"""Seconds between checkpoint writes while events flow; every stop and drain writes one."""

BUSY_POLL: Final = 0.002
"""The poll while the last one found events: a flowing run's next event waits about a
millisecond, and an idle spool is still only polled every ``poll_interval``. Both forwarders
use it (the runner's and the hand-run's forwarding process), neither inside Snakemake."""


class Forwarder:
    """Tail one spool (one run) and publish its events through ``bus.publish_events``."""

    def __init__(
        self,
        spool_path: Path,
        bus: Bus,
        *,
        batch_size: int = 500,
        final_drain_timeout: float = 5.0,
    ) -> None:
        self.spool_path = Path(spool_path)
        self.bus = bus
        self.batch_size = batch_size
        self.final_drain_timeout = final_drain_timeout
        self._reader = SpoolReader(self.spool_path)
        ckpt = load_checkpoint(self.spool_path)
        self._offset = ckpt.offset
        self._seq = ckpt.seq
        self._saved = ckpt
        self._saved_at = time.monotonic()
        self._lock = threading.Lock()  # run() and drain() may overlap (the logger plugin does)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bad_lines = 0
        """Spool lines that were not valid envelopes (skipped, never numbered)."""
        self.failures = 0
        """Publish attempts that failed (broker down, nack, timeout)."""
        self.last_error: str | None = None
        self.all_confirmed = False
        """Whether the last drain (or the final drain of ``run``) reached the end of the spool."""

    @property
    def confirmed_seq(self) -> int:
        """Highest seq the broker confirmed (0 before the first)."""
        return self._seq

    @property
    def offset(self) -> int:
        """Spool bytes forwarded and confirmed."""
        return self._offset

    def backlog_bytes(self) -> int:
        """Spool bytes not yet confirmed (including a trailing partial line)."""
        try:
            return max(0, self.spool_path.stat().st_size - self._offset)
        except FileNotFoundError:
            return 0

    def forward_once(self) -> int:
        """Publish the next batch from the spool; return how many events were confirmed.
        Raises :class:`BusError` if the broker did not confirm (nothing is checkpointed then)."""
        with self._lock:
            items, bad = self._reader.read_from(self._offset, limit=self.batch_size)
            end = self._reader.end_offset
            if bad:
                log.warning(
                    "%s: skipped %d line(s) that are not valid events", self.spool_path, bad
                )
            if not items:
                if end > self._offset:  # only bad or blank lines: move past them
                    self.bad_lines += bad
                    self._offset = end
                    self._checkpoint(force=False)
                return 0
            messages = []
            for i, (_, event) in enumerate(items, start=1):
                event["seq"] = self._seq + i
                messages.append(
                    Outgoing(
                        routing_key=envelope.routing_key(event),
                        body=event,
                        message_id=envelope.message_id(event),
                    )
                )
            try:
                self.bus.publish_events(messages)
            except BusError as exc:
                self.failures += 1
                self.last_error = str(exc)
                raise
            self.bad_lines += bad
            self._seq += len(items)
            self._offset = end
            self._checkpoint(force=False)
            return len(items)

    def _checkpoint(self, *, force: bool) -> None:
        """Record offset and seq if they moved (while flowing: once per CHECKPOINT_EVERY)."""
        now = time.monotonic()
        if (self._offset, self._seq) == self._saved:
            return
        if not force and now - self._saved_at < CHECKPOINT_EVERY:
            return
        save_checkpoint(self.spool_path, self._offset, self._seq)
        self._saved = Checkpoint(self._offset, self._seq)
        self._saved_at = now

    def save(self) -> None:
        """Write the checkpoint now if it is behind (the end of a replay, a stop)."""
        with self._lock:
            self._checkpoint(force=True)

    def run(
        self, stop: threading.Event, poll_interval: float = 0.05, busy_poll: float | None = None
    ) -> None:
        """Forward until ``stop`` is set, then make one bounded attempt to drain the rest.
        ``busy_poll``: the shorter wait after a poll that found events (``None``: the same)."""
        after_events = poll_interval if busy_poll is None else min(poll_interval, busy_poll)
        backoff = Backoff()
        while not stop.is_set():
            try:
                n = self.forward_once()
            except BusError as exc:
                log.warning("%s: %s; retrying", self.spool_path.name, exc)
                backoff.wait(stop)
                continue
            except Exception:  # a bug or a full disk must not silently end forwarding
                log.exception("%s: forwarding failed; retrying", self.spool_path)
                backoff.wait(stop)
                continue
            backoff.reset()
            if n == 0:
                stop.wait(poll_interval)
            elif n < self.batch_size:  # events are flowing: the next one is likely soon
                stop.wait(after_events)
        if self.backlog_bytes():
            self.drain(self.final_drain_timeout)
        else:
            self.all_confirmed = True
        self.save()

    def drain(self, timeout: float) -> bool:
        """Forward everything in the spool now; True if all of it was confirmed in time."""
        try:
            return self._drain(timeout)
        finally:
            self.save()

    def _drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        try:
            target = self.spool_path.stat().st_size
        except FileNotFoundError:
            target = 0
        backoff = Backoff()
        while True:
            try:
                n = self.forward_once()
            except BusError as exc:
                if time.monotonic() >= deadline:
                    log.warning("%s: drain gave up: %s", self.spool_path.name, exc)
                    self.all_confirmed = False
                    return False
                backoff.wait(deadline=deadline)
                continue
            # Done once past what was there at the start, or when only a partial line is left.
            if self._offset >= target or n == 0:
                self.all_confirmed = True
                return True
            if time.monotonic() >= deadline:
                self.all_confirmed = False
                return False

    def start_thread(
        self, poll_interval: float = 0.05, busy_poll: float | None = None
    ) -> threading.Thread:
        """Run :meth:`run` on a daemon thread (stopped by :meth:`stop`). Callers poll faster
        while events flow (:data:`BUSY_POLL`), since an event's wait for the next poll is part
        of the live feed's latency."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run,
            args=(self._stop, poll_interval, busy_poll),
            name=f"forwarder:{self.spool_path.name}",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread after its final drain; True if everything was confirmed."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                return False
        return self.all_confirmed and self.backlog_bytes() == 0
