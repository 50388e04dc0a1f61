"""The runner: takes submit commands off the runs queue, runs each in its own Snakemake process,
forwards its spool, owns its lifecycle events, heartbeats, and cancels on request.

One thread per run (at most ``MAX_RUNS`` at once, the runs queue's prefetch). A run's command is
acknowledged only after its terminal ``run_state`` and every event before it were confirmed by the
broker, so a runner that dies mid-run leaves the command to be redelivered; whoever gets it finds
the run's spool (same ``DATA_DIR``), kills what is left of the old process group, records
``SYSTEM_ERROR`` and forwards the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from runner.forwarder import Forwarder
from runner.rundir import RunDir, RunDirError, resolve_inputs, run_dir
from runner.spool import SpoolReader, SpoolWriter
from runner.supervisor import SnakemakeProcess, kill_leftover, snakemake_argv
from snakedeck import envelope, messages
from snakedeck.bus.base import Bus, BusError, Delivery, Subscription
from snakedeck.settings import Settings
from snakedeck.states import InvalidTransition, RunState, check_move, is_terminal
from snakedeck.workflows import WorkflowError, WorkflowRegistry

log = logging.getLogger(__name__)

MAX_REMEMBERED_CANCELS = 10_000
STOP_DRAIN_TIMEOUT = 15.0


class BadCommand(ValueError):
    pass


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
    if not isinstance(raw.get("inputs", []), list):
        raise BadCommand("inputs must be a list")
    return raw  # type: ignore[return-value]


class SpoolSummary:
    """What a finished (or abandoned) spool says about its run."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.last_state: RunState | None = None
        self.started = False
        self.job_errors: list[str] = []
        self.errors: list[str] = []
        offset = 0
        reader = SpoolReader(path)
        while True:
            items, _bad = reader.read_from(offset, limit=5000)
            if not items:
                break
            offset = reader.end_offset
            for _, ev in items:
                kind = ev.get("type")
                if kind == "run_state":
                    state = ev.get("data", {}).get("state")
                    if state in RunState.__members__:
                        self.last_state = RunState(state)
                elif kind == "workflow_started":
                    self.started = True
                elif kind == "job_error":
                    self.job_errors.append(ev.get("msg") or "a job failed")
                elif kind == "error":
                    self.errors.append(ev.get("msg") or "")

    def failure_reason(self, default: str) -> str:
        if self.job_errors:
            more = len(self.job_errors) - 3
            text = "; ".join(self.job_errors[:3])
            return text + (f" (and {more} more)" if more > 0 else "")
        for msg in self.errors:
            if msg.strip():
                return msg.strip().splitlines()[0][:500]
        return default


class RunHandle:
    """One run owned by this runner: its thread, process, spool writer and forwarder."""

    def __init__(self, runner: Runner, command: messages.SubmitCommand, delivery: Delivery) -> None:
        self.runner = runner
        self.command = command
        self.run_id = command["run_id"]
        self.delivery = delivery
        self.rd: RunDir = run_dir(runner.settings.runs_dir, self.run_id)
        self.state = RunState.QUEUED
        self.cancel_requested = False
        self.aborting = False
        """The runner is stopping: end the run as SYSTEM_ERROR."""
        self.proc: SnakemakeProcess | None = None
        self.writer: SpoolWriter | None = None
        self.forwarder: Forwarder | None = None
        self.lock = threading.RLock()
        self.thread = threading.Thread(target=self._main, name=f"run:{self.run_id}", daemon=True)
        self.done = threading.Event()

    # -- lifecycle events -----------------------------------------------------------------------
    def _emit(self, new: RunState, **details: Any) -> bool:
        with self.lock:
            try:
                check_move(self.state, new)
            except InvalidTransition as exc:
                log.error("run %s: %s; not recorded", self.run_id, exc)
                return False
            assert self.writer is not None
            self.writer.append(envelope.run_state(self.run_id, new.value, **details))
            self.state = new
            log.info("run %s: %s %s", self.run_id, new.value, details.get("reason", ""))
            return True

    # -- the run's thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            if self.rd.exists():
                self._recover()
            else:
                self._execute()
        except Exception as exc:  # a bug here must still end the run and release the command
            log.exception("run %s: runner failure", self.run_id)
            self._fail_safe(f"runner failure: {type(exc).__name__}: {exc}")
        try:
            delivered = self._finish_forwarding()
        except Exception:
            log.exception("run %s: forwarding failed", self.run_id)
            delivered = False
        self.runner._release(self, ack=delivered)
        self.done.set()

    def _fail_safe(self, reason: str) -> None:
        try:
            if self.writer is None:
                self.rd.create()
                self.writer = SpoolWriter(self.rd.spool)
            if self.proc is not None:
                self.proc.terminate(0.0)
                self.proc.reap_group()
            if not is_terminal(self.state):
                self._emit(RunState.SYSTEM_ERROR, reason=reason)
        except Exception:
            log.exception("run %s: could not record the failure", self.run_id)

    def _start_forwarder(self) -> None:
        self.forwarder = Forwarder(self.rd.spool, self.runner.bus)
        self.forwarder.start_thread()

    def _execute(self) -> None:
        self.rd.create()
        self.writer = SpoolWriter(self.rd.spool)
        self._start_forwarder()
        with self.lock:
            if self.cancel_requested:
                self._emit(RunState.CANCELED, reason="cancelled before it started")
                return
            self._emit(RunState.INITIALIZING)
        registry = self.runner.registry
        try:
            workflow = registry.get(self.command["workflow"])
            config = registry.validate_config(workflow, self.command.get("config") or {})
            inputs = resolve_inputs(self.runner.settings.files_dir, self.command.get("inputs"))
            if inputs:
                config["inputs"] = inputs
            self.rd.write_config(config)
        except (WorkflowError, RunDirError, OSError) as exc:
            self._emit(RunState.SYSTEM_ERROR, reason=f"could not prepare the run: {exc}")
            return
        argv = snakemake_argv(workflow.snakefile, self.rd, self.run_id, self.runner.settings.cores)
        with self.lock:
            if self.cancel_requested or self.aborting:
                self._cancel_before_start()
                return
            try:
                self.proc = SnakemakeProcess(argv, self.rd).start()
            except OSError as exc:
                self._emit(RunState.SYSTEM_ERROR, reason=f"could not start Snakemake: {exc}")
                return
            self._emit(RunState.RUNNING)
        rc = self.proc.wait()
        self.proc.reap_group()
        self._record_exit(rc)

    def _cancel_before_start(self) -> None:
        if self.aborting:
            self._emit(RunState.SYSTEM_ERROR, reason="runner stopped before the run started")
            return
        if self.state != RunState.CANCELING:
            self._emit(RunState.CANCELING)
        self._emit(RunState.CANCELED, reason="cancelled before Snakemake started")

    def _record_exit(self, rc: int) -> None:
        exit_code = rc if rc >= 0 else None
        sig = -rc if rc < 0 else None
        details: dict[str, Any] = {"exit_code": exit_code, "signal": sig}
        summary = SpoolSummary(self.rd.spool)
        with self.lock:
            if self.aborting:
                self._emit(
                    RunState.SYSTEM_ERROR,
                    reason="runner stopped while the run was active",
                    **details,
                )
            elif self.state == RunState.CANCELING and rc != 0:
                self._emit(RunState.CANCELED, reason="cancelled", **details)
            elif rc == 0:
                self._emit(RunState.COMPLETE, **details)
            elif summary.started:
                reason = summary.failure_reason(_exit_text(rc))
                self._emit(RunState.EXECUTOR_ERROR, reason=reason, **details)
            else:
                tail = self.rd.tail_log(1500)
                reason = f"Snakemake {_exit_text(rc)} before the workflow started"
                reason += f": {summary.failure_reason(tail)}" if (summary.errors or tail) else ""
                self._emit(RunState.SYSTEM_ERROR, reason=reason[:2000], **details)

    def _recover(self) -> None:
        """The command came back (redelivered) and this machine has the run's spool already."""
        summary = SpoolSummary(self.rd.spool)
        self.writer = SpoolWriter(self.rd.spool)
        self.state = summary.last_state or RunState.QUEUED
        if not is_terminal(self.state):
            kill_leftover(self.rd, self.run_id)
            with self.lock:
                if self.state == RunState.CANCELING:
                    self._emit(RunState.CANCELED, reason="cancelled (runner restarted meanwhile)")
                else:
                    self._emit(
                        RunState.SYSTEM_ERROR, reason="runner restarted while the run was active"
                    )
        else:
            log.info("run %s: redelivered after it ended; forwarding what is left", self.run_id)
        self._start_forwarder()

    def _finish_forwarding(self) -> bool:
        """Close the spool and forward all of it, retrying while the broker is down. Returns
        whether everything was confirmed (then the command may be acknowledged)."""
        if self.writer is not None:
            self.writer.close()
        fwd = self.forwarder
        if fwd is None:
            return True
        fwd.stop(timeout=30.0)
        deadline: float | None = None
        while True:
            if fwd.drain(5.0) and fwd.backlog_bytes() == 0:
                return True
            if fwd.backlog_bytes() and _only_partial_line_left(fwd):
                return True
            if self.runner.stopping:
                deadline = deadline or time.monotonic() + STOP_DRAIN_TIMEOUT
                if time.monotonic() >= deadline:
                    log.warning(
                        "run %s: broker unavailable at shutdown; the command stays queued and "
                        "the spool will be forwarded when it is redelivered",
                        self.run_id,
                    )
                    return False
            time.sleep(0.5)

    # -- control --------------------------------------------------------------------------------
    def cancel(self) -> None:
        with self.lock:
            if self.cancel_requested or is_terminal(self.state):
                return
            self.cancel_requested = True
            if self.state in (RunState.INITIALIZING, RunState.RUNNING):
                self.rd.mark_cancel()
                self._emit(RunState.CANCELING, reason="cancel requested")
                if self.proc is not None:
                    self.proc.terminate(self.runner.settings.cancel_grace)

    def abort(self) -> None:
        """The runner is stopping: end this run now (SIGTERM, SIGKILL after the grace)."""
        with self.lock:
            self.aborting = True
            if self.proc is not None and not is_terminal(self.state):
                self.rd.mark_cancel()
                self.proc.terminate(self.runner.settings.cancel_grace)


def _only_partial_line_left(fwd: Forwarder) -> bool:
    """A writer killed mid-line can leave a fragment without newline: nothing to forward."""
    try:
        with open(fwd.spool_path, "rb") as f:
            f.seek(fwd.offset)
            return b"\n" not in f.read()
    except OSError:
        return False


def _exit_text(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return f"was killed by {name}"
    return f"exited with code {rc}"


class Runner:
    """``Runner(settings, bus).start()`` … ``.stop()``; or ``run_forever()`` in a process."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        *,
        registry: WorkflowRegistry | None = None,
        runner_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.registry = registry or WorkflowRegistry(settings.workflows_dir)
        self.runner_id = runner_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._runs: dict[str, RunHandle] = {}
        self._cancelled: OrderedDict[str, float] = OrderedDict()
        self._stopping = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._subs: list[Subscription] = []
        self._started = False

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
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.bus.declare()
        except BusError as exc:
            log.warning("runner: cannot declare the topology yet (%s); consumers will retry", exc)
        # Control first, so a cancel sent right after a submit is not missed.
        self._subs.append(self.bus.consume_control(self._on_control))
        self._subs.append(self.bus.consume_runs(self._on_runs, prefetch=self.settings.max_runs))
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="runner-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        log.info("runner %s started (max %d runs)", self.runner_id, self.settings.max_runs)

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """True once the control and runs consumers are registered with the broker (a cancel
        broadcast before that would not reach this runner)."""
        deadline = time.monotonic() + timeout
        for sub in list(self._subs):
            wait = getattr(sub, "wait_ready", None)
            if wait is not None and not wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

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
        limit = (
            timeout if timeout is not None else self.settings.cancel_grace + STOP_DRAIN_TIMEOUT + 10
        )
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
        log.info("runner %s stopped", self.runner_id)

    def run_forever(self) -> None:
        """Start, run until SIGINT/SIGTERM, stop."""
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    # -- commands -------------------------------------------------------------------------------
    def _on_runs(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._accept(delivery)

    def _accept(self, delivery: Delivery) -> None:
        try:
            command = parse_command(delivery.json())
        except (BadCommand, ValueError) as exc:
            log.error("runner: dead-lettering a bad submit command: %s", exc)
            delivery.dead_letter()
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
            handle = RunHandle(self, command, delivery)
            handle.cancel_requested = self._cancelled.pop(run_id, None) is not None
            self._runs[run_id] = handle
        handle.thread.start()

    def _release(self, handle: RunHandle, *, ack: bool) -> None:
        with self._lock:
            if self._runs.get(handle.run_id) is handle:
                del self._runs[handle.run_id]
            delivery = handle.delivery
        try:
            if ack:
                delivery.ack()
            else:
                delivery.requeue()
        except BusError as exc:
            log.warning("run %s: could not settle its command (%s)", handle.run_id, exc)

    # -- control --------------------------------------------------------------------------------
    def _on_control(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            try:
                body = delivery.json()
            except ValueError:
                body = None
            with contextlib.suppress(BusError):
                delivery.ack()
            if not isinstance(body, dict):
                log.warning("runner: ignoring a control message that is not an object")
                continue
            if body.get("action") == "cancel" and isinstance(body.get("run_id"), str):
                self.cancel(body["run_id"])
            else:
                log.warning("runner: ignoring unknown control command %r", body.get("action"))

    def cancel(self, run_id: str) -> bool:
        """Cancel a run this runner owns (True), or remember the request in case its command
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
    def heartbeat(self) -> messages.RunnerHeartbeat:
        return {
            "kind": "heartbeat",
            "runner_id": self.runner_id,
            "runs": self.active_runs(),
            "ts": envelope.now_iso(),
        }

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.is_set():
            try:
                self.bus.publish_update(dict(self.heartbeat()))
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is not fatal
                log.debug("runner: heartbeat not sent: %s", exc)
            self._heartbeat_stop.wait(self.settings.heartbeat_interval)
