"""The runner: takes submit commands off the runs queue and executes each run exactly once.

Before it starts a run, the runner **claims** it in the store (:mod:`snakedeck.store.claims`);
a command for a run that another runner holds (a broker restart redelivers unacknowledged
commands to whoever listens) is acknowledged and left alone, so no run is executed twice. The
heartbeat renews this runner's claims every few seconds and records the runner in the store's
registry; a claim that was taken over (the reaper declared the run lost) stops that run here.
On start, the runner recovers the runs it still holds from before a crash (:mod:`runner.run`).

Each runner also consumes a durable queue of its own (``<ns>.runner.<runner_id>``): a
**resume** of a run that ended failed or cancelled is sent there, since only this runner holds
the run's work directory; the command waits in the queue while the runner is away.

One thread per run, at most ``MAX_RUNS`` at once (the runs queue's prefetch, and a check of our
own, since a reconnect resets the prefetch window). A command is acknowledged once its run is
over and every event of it confirmed by the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from runner.identity import RunnerIdentity
from runner.run import RunHandle
from snakedeck import bundles, envelope, messages, metrics, projection
from snakedeck.bus.base import Bus, BusError, Delivery, Subscription
from snakedeck.rundir import run_dir
from snakedeck.settings import Settings
from snakedeck.states import is_terminal
from snakedeck.store import Store, StoreError
from snakedeck.store.claims import ClaimOutcome, RunnerBeat
from snakedeck.workflows import WorkflowRegistry

log = logging.getLogger(__name__)

MAX_REMEMBERED_CANCELS = 10_000
BUSY_REQUEUE_DELAY = 1.0
"""How long a command waits before it goes back to the queue when this runner is full."""


class BadCommand(ValueError):
    pass


def parse_resume(raw: Any) -> messages.ResumeCommand:
    if not isinstance(raw, dict) or raw.get("action") != "resume":
        raise BadCommand('a runner command is {"action": "resume", "run_id", "attempt"}')
    run_id = raw.get("run_id")
    if not isinstance(run_id, str) or not envelope.is_valid_run_id(run_id):
        raise BadCommand(f"run_id {run_id!r} is not a valid run id")
    attempt = raw.get("attempt")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 2:
        raise BadCommand(f"attempt must be a whole number from 2, got {attempt!r}")
    return raw  # type: ignore[return-value]


def parse_command(raw: Any) -> messages.SubmitCommand:
    if not isinstance(raw, dict):
        raise BadCommand("a submit command is a JSON object")
    run_id = raw.get("run_id")
    if not isinstance(run_id, str) or not envelope.is_valid_run_id(run_id):
        raise BadCommand(f"run_id {run_id!r} is not a valid run id")
    if not isinstance(raw.get("workflow"), str):
        raise BadCommand("workflow must be a string")
    if not isinstance(raw.get("config", {}), dict):
        raise BadCommand("config must be an object")
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, dict) or not all(isinstance(v, dict) for v in inputs.values()):
        raise BadCommand("inputs must map input names to registered files")
    if "workflow_bundle" in raw and not isinstance(raw["workflow_bundle"], dict):
        raise BadCommand("workflow_bundle must describe the run's workflow files")
    return raw  # type: ignore[return-value]


class Runner:
    """``Runner(settings, bus, store).start()`` … ``.stop()``."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: Store,
        *,
        registry: WorkflowRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.registry = registry or WorkflowRegistry(settings.workflows_dir)
        self.identity: RunnerIdentity | None = None
        self._lock = threading.Lock()
        self._runs: dict[str, RunHandle] = {}
        self._cancelled: OrderedDict[str, float] = OrderedDict()
        self._stopping = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._subs: list[Subscription] = []
        self._started = False
        self._started_at = time.time()

    @property
    def runner_id(self) -> str:
        assert self.identity is not None, "the runner has not started"
        return self.identity.runner_id

    @property
    def host(self) -> str:
        assert self.identity is not None, "the runner has not started"
        return self.identity.host

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def active_runs(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def handle(self, run_id: str) -> RunHandle | None:
        with self._lock:
            return self._runs.get(run_id)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.identity = RunnerIdentity.acquire(self.settings.data_dir)
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.bus.declare()
        except BusError as exc:
            log.warning("runner: cannot declare the topology yet (%s); consumers will retry", exc)
        # Control first, so a cancel sent right after a submit is not missed.
        self._subs.append(self.bus.consume_control(self._on_control))
        self._recover_own_runs()
        self._subs.append(self.bus.consume_runs(self._on_runs, prefetch=self.settings.max_runs))
        self._subs.append(
            self.bus.consume_runner(
                self.runner_id, self._on_runner_commands, prefetch=self.settings.max_runs
            )
        )
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="runner-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        log.info("runner %s started (max %d runs)", self.runner_id, self.settings.max_runs)

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """True once the control and runs consumers are registered with the broker (a cancel
        broadcast before that would not reach this runner)."""
        deadline = time.monotonic() + timeout
        return all(
            sub.wait_ready(max(0.0, deadline - time.monotonic())) for sub in list(self._subs)
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking runs; end active ones as SYSTEM_ERROR (SIGTERM, SIGKILL after the grace),
        forward their spools (bounded while the broker is down), then disconnect."""
        if not self._started or self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            handles = list(self._runs.values())
        for h in handles:
            h.abort()
        limit = timeout if timeout is not None else self.settings.cancel_grace + 25
        deadline = time.monotonic() + limit
        for h in handles:
            h.done.wait(max(0.0, deadline - time.monotonic()))
        self._heartbeat_stop.set()
        for sub in reversed(self._subs):
            try:
                sub.stop()
            except Exception:
                log.exception("runner: stopping a subscription failed")
        self._subs.clear()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(5)
        if self.identity is not None:
            self.identity.release()
        log.info("runner %s stopped", self.runner_id)

    # -- claims ---------------------------------------------------------------------------------
    def still_holds(self, run_id: str) -> bool:
        """Whether this runner's claim on the run stands (an unreachable store: assume so, the
        epoch on every lifecycle event still fences a stale owner off)."""
        try:
            held = self.store.renew_claims(
                self.runner_id, [run_id], now=time.time(), lease=self.settings.claim_lease
            )
            return run_id in held
        except StoreError as exc:
            log.warning("run %s: cannot check the claim (%s); going on", run_id, exc)
            return True

    def _recover_own_runs(self) -> None:
        """Runs this runner identity still holds from before a restart: adopt or judge them."""
        try:
            claims = self.store.claims_of(self.runner_id)
        except StoreError as exc:
            log.error("runner: cannot list its claims to recover them: %s", exc)
            return
        for claim in claims:
            try:
                run = self.store.get_run(claim.run_id)
            except StoreError as exc:
                log.error("run %s: cannot recover it now: %s", claim.run_id, exc)
                continue
            if run is None:
                self._release_claim(claim.run_id)
                continue
            log.warning("run %s: recovering it after a restart of this runner", claim.run_id)
            self._start(RunHandle(self, claim.run_id, claim, mode="recover"))

    def _release_claim(self, run_id: str) -> None:
        try:
            self.store.release_claim(run_id, self.runner_id)
        except StoreError as exc:
            log.warning("run %s: claim not released (%s); the reaper will clear it", run_id, exc)

    # -- commands -------------------------------------------------------------------------------
    def _on_runs(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._accept(delivery)

    def _accept(self, delivery: Delivery) -> None:
        try:
            command = parse_command(delivery.json())
        except (BadCommand, ValueError) as exc:
            self._dead_letter(delivery, f"not a valid submit command: {exc}")
            return
        run_id = command["run_id"]
        with self._lock:
            if self._stopping.is_set():
                delivery.requeue()
                return
            existing = self._runs.get(run_id)
            if existing is not None:
                # Redelivered (our connection dropped) while we still run it: ack this copy later.
                log.info("run %s: command redelivered while active here", run_id)
                existing.delivery = delivery
                return
            full = len(self._runs) >= self.settings.max_runs
        if full:  # a reconnect reset the broker's prefetch window: keep our own limit
            self._stopping.wait(BUSY_REQUEUE_DELAY)
            delivery.requeue()
            return
        try:
            run = self.store.get_run(run_id)
            if run is None:
                self._dead_letter(delivery, f"no run {run_id!r} exists in the store")
                return
            if is_terminal(run.get("state")):
                log.info("run %s: already %s; command dropped", run_id, run.get("state"))
                delivery.ack()
                return
            result = self.store.claim_run(
                run_id,
                self.runner_id,
                host=self.host,
                now=time.time(),
                lease=self.settings.claim_lease,
            )
        except StoreError as exc:
            log.warning("run %s: store unavailable (%s); command requeued", run_id, exc)
            self._stopping.wait(BUSY_REQUEUE_DELAY)
            delivery.requeue()
            return
        if result.outcome != ClaimOutcome.CLAIMED:
            log.info(
                "run %s: runner %s holds it (%s); command dropped here",
                run_id,
                result.claim.runner_id,
                result.outcome.value,
            )
            delivery.ack()
            return
        mode = (
            "recover"
            if self.settings.runs_dir.joinpath(run_id, "events.jsonl").exists()
            else "execute"
        )
        handle = RunHandle(
            self, run_id, result.claim, mode=mode, command=command, delivery=delivery
        )
        with self._lock:
            handle.cancel_requested = self._cancelled.pop(run_id, None) is not None
        if run.get("cancel_requested"):
            handle.cancel_requested = True
        self._start(handle)

    def _on_runner_commands(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._accept_resume(delivery)

    def _accept_resume(self, delivery: Delivery) -> None:
        """Resume a run this runner holds the directory of (its next attempt)."""
        try:
            command = parse_resume(delivery.json())
        except (BadCommand, ValueError) as exc:
            self._dead_letter(delivery, f"not a valid runner command: {exc}", queue="runner")
            return
        run_id, attempt = command["run_id"], command["attempt"]
        with self._lock:
            if self._stopping.is_set():
                delivery.requeue()
                return
            if run_id in self._runs:
                log.warning("run %s: resume asked while it is active here; dropped", run_id)
                delivery.ack()
                return
            full = len(self._runs) >= self.settings.max_runs
        if full:
            self._stopping.wait(BUSY_REQUEUE_DELAY)
            delivery.requeue()
            return
        try:
            run = self.store.get_run(run_id)
            if run is None:
                self._dead_letter(
                    delivery, f"no run {run_id!r} exists in the store", queue="runner"
                )
                return
            if run.get("attempt") != attempt or run.get("state") != "QUEUED":
                log.info("run %s: resume of attempt %d is stale (attempt %s is %s); dropped",
                         run_id, attempt, run.get("attempt"), run.get("state"))  # fmt: skip
                delivery.ack()
                return
            lease = self.settings.claim_lease
            claim = self.store.reopen_claim(run_id, self.runner_id, now=time.time(), lease=lease)
            if claim is None:  # not finished here: still live (ours or another's), or never ours
                result = self.store.claim_run(
                    run_id, self.runner_id, host=self.host, now=time.time(), lease=lease
                )
                claim = result.claim if result.outcome == ClaimOutcome.CLAIMED else None
                holder = result.claim.runner_id
        except StoreError as exc:
            log.warning("run %s: store unavailable (%s); resume requeued", run_id, exc)
            self._stopping.wait(BUSY_REQUEUE_DELAY)
            delivery.requeue()
            return
        if claim is None:
            log.warning("run %s: cannot resume it: %s holds it", run_id, holder)
            delivery.ack()
            return
        if not run_dir(self.settings.runs_dir, run_id).exists():
            self._fail_resume(
                run_id,
                f"cannot resume: runner {self.runner_id} does not hold the run's work "
                "directory any more",
            )
            delivery.ack()
            return
        handle = RunHandle(
            self,
            run_id,
            claim,
            mode="resume",
            delivery=delivery,
            attempt=attempt,
            workflow=run.get("workflow"),
            bundle=(run.get("workflow_bundle") or {}) if bundles.is_private(run) else None,
        )
        with self._lock:
            handle.cancel_requested = self._cancelled.pop(run_id, None) is not None
        if run.get("cancel_requested"):
            handle.cancel_requested = True
        log.info("run %s: resuming it (attempt %d)", run_id, attempt)
        self._start(handle)

    def _fail_resume(self, run_id: str, reason: str) -> None:
        """End an attempt that cannot run here before it wrote any event (its spool is not
        here to write to), in the store, and tell the gateways."""
        log.error("run %s: %s", run_id, reason)

        def fail(current: dict[str, Any]) -> dict[str, Any]:
            failed = projection.fail_attempt(current, reason, at=envelope.now_iso())  # type: ignore[arg-type]
            return {k: failed.get(k) for k in projection.ATTEMPT_FIELDS}

        try:
            run = self.store.modify_run(run_id, fail)
            self._release_claim(run_id)
            if run is not None:
                update = {"kind": "persisted", "events": [], "jobs": [],
                          "runs": [projection.run_summary(run)]}  # fmt: skip
                self.bus.publish_update(update)
        except (StoreError, BusError) as exc:
            log.warning("run %s: the failed resume is not recorded (%s)", run_id, exc)

    def _start(self, handle: RunHandle) -> None:
        with self._lock:
            self._runs[handle.run_id] = handle
        handle.thread.start()

    def release(self, handle: RunHandle, *, delivered: bool) -> None:
        """A run's thread is done: drop its claim once every event is out, settle its command."""
        with self._lock:
            if self._runs.get(handle.run_id) is handle:
                del self._runs[handle.run_id]
            delivery = handle.delivery
        if delivered and not handle.lost and not handle.artefacts_left:
            try:
                self.store.finish_claim(handle.run_id, self.runner_id)
            except StoreError as exc:  # the claim stays live: a restart recovers the run
                log.warning("run %s: claim not marked finished (%s)", handle.run_id, exc)
        if delivery is None:
            return
        try:
            if delivered:
                delivery.ack()
            else:
                delivery.requeue()
        except BusError as exc:
            log.warning("run %s: could not settle its command (%s)", handle.run_id, exc)

    def _dead_letter(self, delivery: Delivery, reason: str, queue: str = "runs") -> None:
        log.error("runner: dead-lettering a %s command: %s", queue, reason)
        delivery.dead_letter(reason)
        metrics.DEAD_LETTERED.labels(queue=queue).inc()

    # -- control --------------------------------------------------------------------------------
    def _on_control(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            try:
                body = delivery.json()
            except ValueError:
                body = None
            if (
                isinstance(body, dict)
                and body.get("action") == "cancel"
                and isinstance(body.get("run_id"), str)
                and envelope.is_valid_run_id(body["run_id"])
            ):
                self.cancel(body["run_id"])
                continue
            log.warning("runner: dead-lettering a control message it cannot use")
            delivery.dead_letter("not a valid control command")
            metrics.DEAD_LETTERED.labels(queue="control").inc()

    def cancel(self, run_id: str) -> bool:
        """Cancel a run this runner holds (True), or remember the request in case its command
        is dequeued here later (False)."""
        with self._lock:
            handle = self._runs.get(run_id)
            if handle is None:
                self._cancelled[run_id] = time.time()
                self._cancelled.move_to_end(run_id)
                while len(self._cancelled) > MAX_REMEMBERED_CANCELS:
                    self._cancelled.popitem(last=False)
                return False
        handle.cancel()
        return True

    # -- heartbeat ------------------------------------------------------------------------------
    def beat(self) -> None:
        """Record this runner in the registry and renew its claims; stop runs it lost."""
        runs = self.active_runs()
        now = time.time()
        self.store.record_beat(
            RunnerBeat(
                runner_id=self.runner_id,
                host=self.host,
                seen_at=now,
                started_at=self._started_at,
                runs=runs,
                max_runs=self.settings.max_runs,
            )
        )
        held = self.store.renew_claims(
            self.runner_id, runs, now=now, lease=self.settings.claim_lease
        )
        for run_id in set(runs) - held:
            handle = self.handle(run_id)
            if handle is not None:
                handle.lose("its claim was taken over (the run was declared lost)")

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.is_set():
            try:
                self.beat()
            except StoreError as exc:
                log.warning("runner: heartbeat not recorded (%s); claims not renewed", exc)
            except Exception:
                log.exception("runner: heartbeat failed")
            self._heartbeat_stop.wait(self.settings.heartbeat_interval)
