"""One run on this runner: prepare, start Snakemake, supervise, record how it ended.

A :class:`RunHandle` owns the run's thread, its Snakemake process group, the spool writer, the
forwarder and the run's artefacts (:mod:`runner.artefacts`: logs, failures, results and
resources shipped to the store), and writes the run's lifecycle (``run_state``) events: each
carries the epoch of the runner's claim, so a runner that lost its claim cannot move the run's
state, and the run's ``attempt``. It executes a run it just claimed, **resumes** one that ended
failed or cancelled (the next attempt, in the same work directory, ``--rerun-incomplete``, the
same spool), or **recovers** one it had claimed before a crash: what is left of the old process
group is adopted (watched until it ends, cancellable), and the exit status that
:mod:`runner.exit_status` wrote gives the run its true final state.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from runner import cluster_jobs, exit_status
from runner.artefacts import RunArtefacts
from runner.bundle import stage_bundle
from runner.executor import ExecutorError, executor_args, stop_signal
from runner.inputs import stage_inputs
from runner.supervisor import (
    SnakemakeProcess,
    group_members,
    kill_group,
    leftover_group,
    snakemake_argv,
)
from snakedeck import bundles, cluster, envelope, executors, messages
from snakedeck.bus.base import Bus, Delivery
from snakedeck.envelope import Envelope
from snakedeck.forwarder import BUSY_POLL, Forwarder
from snakedeck.rundir import RunDir, RunDirError, run_dir
from snakedeck.settings import Settings
from snakedeck.spool import SpoolReader, SpoolWriter
from snakedeck.states import RunState, check_move, is_terminal
from snakedeck.store import Store, StoreError
from snakedeck.store.claims import Claim
from snakedeck.workflows import Workflow, WorkflowError, WorkflowRegistry


class RunOwner(Protocol):
    """What a run needs of the runner holding it (:class:`runner.service.Runner`)."""

    settings: Settings
    store: Store
    bus: Bus
    registry: WorkflowRegistry

    @property
    def runner_id(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def stopping(self) -> bool: ...
    def still_holds(self, run_id: str) -> bool: ...
    def release(self, handle: RunHandle, *, delivered: bool) -> None: ...


log = logging.getLogger(__name__)

STOP_DRAIN_TIMEOUT = 15.0
ADOPT_POLL = 0.5
FORWARD_POLL = 0.01
"""The runner's forwarder looks at the spool this often when it has caught up (latency)."""

Mode = Literal["execute", "resume", "recover"]


class SpoolSummary:
    """What a finished (or abandoned) spool says about its run."""

    def __init__(self, path: os.PathLike[str] | str, *, since: int = 0) -> None:
        self.last_state: RunState | None = None
        self.last_attempt = 1
        self.attempt_start = 0
        """Where the last attempt's events begin: after the last terminal state before it (the
        byte a resume's ``spool_start`` was)."""
        self.started = False
        self.job_errors: list[str] = []
        self._error_jobids: list[str | None] = []
        self.cluster: dict[str, dict[str, str]] = {}
        """Snakemake jobid → its cluster job's fields, as the last ``job_cluster`` events say."""
        self.errors: list[str] = []
        self._state_end = 0
        offset = 0
        reader = SpoolReader(path)
        while True:
            items, _bad = reader.read_from(offset, limit=5000)
            if not items:
                break
            offset = reader.end_offset
            for end, ev in items:
                kind = ev.get("type")
                if kind == "run_state":
                    state = ev.get("data", {}).get("state")
                    attempt = ev.get("data", {}).get("attempt")
                    if state in RunState.__members__:
                        if self.last_state is not None and is_terminal(self.last_state):
                            self.attempt_start = self._state_end
                        self.last_state = RunState(state)
                        self.last_attempt = attempt if isinstance(attempt, int) else 1
                        self._state_end = end
                if end <= since:
                    continue  # an earlier attempt's: only its lifecycle counts here
                if kind == "workflow_started":
                    self.started = True
                elif kind == "job_error":
                    self.job_errors.append(ev.get("msg") or "a job failed")
                    jobid = ev.get("data", {}).get("jobid")
                    self._error_jobids.append(None if jobid is None else str(jobid))
                elif kind == "job_cluster":
                    data = ev.get("data", {})
                    fields = self.cluster.setdefault(str(data.get("jobid")), {})
                    fields.update(cluster.cluster_fields(data))
                elif kind == "error":
                    self.errors.append(ev.get("msg") or "")

    def _scheduler_says(self, jobid: str | None) -> str:
        """`` (slurm job 17: TIMEOUT, TimeLimit)`` for a job that failed on a cluster."""
        fields = self.cluster.get(jobid or "") or {}
        if not fields.get("cluster_job_id"):
            return ""
        said = ", ".join(v for k in ("cluster_state", "cluster_reason") if (v := fields.get(k)))
        name = fields.get("scheduler") or "cluster"
        return f" ({name} job {fields['cluster_job_id']}{': ' + said if said else ''})"

    def failure_reason(self, default: str) -> str:
        if self.job_errors:
            more = len(self.job_errors) - 3
            text = "; ".join(
                msg + self._scheduler_says(jobid)
                for msg, jobid in zip(self.job_errors[:3], self._error_jobids, strict=False)
            )
            return text + (f" (and {more} more)" if more > 0 else "")
        for msg in self.errors:
            if msg.strip():
                return msg.strip().splitlines()[0][:500]
        return default


class RunHandle:
    """One run held by this runner: its thread, process, spool writer and forwarder."""

    def __init__(
        self,
        runner: RunOwner,
        run_id: str,
        claim: Claim,
        *,
        mode: Mode,
        command: messages.SubmitCommand | None = None,
        delivery: Delivery | None = None,
        attempt: int = 1,
        workflow: str | None = None,
        bundle: Mapping[str, Any] | None = None,
    ) -> None:
        self.runner = runner
        self.run_id = run_id
        self.claim = claim
        self.mode = mode
        self.command = command
        self.delivery = delivery
        """The command to acknowledge once the run is over (``None`` when recovering)."""
        self.attempt = attempt
        self.workflow_name = workflow or (command or {}).get("workflow")
        self.bundle: Mapping[str, Any] | None = bundle
        """A private workflow's files (WES attachments): the run's own, never the registry's."""
        if self.bundle is None and bundles.is_private(command or {}):
            self.bundle = (command or {}).get("workflow_bundle") or {}
        self.rd: RunDir = run_dir(runner.settings.runs_dir, run_id)
        self.state = RunState.QUEUED
        self.events_closed = False
        """The attempt's terminal state is written: the runner appends no more events."""
        self.spool_start = 0
        """Where this attempt's events begin in the spool (a resume appends to it)."""
        self.artefacts_left = False
        """Some artefacts could not be stored: the claim is kept, so this runner, restarted,
        recovers the run and ships them."""
        self.artefacts = RunArtefacts(
            run_id,
            self.rd,
            store=runner.store,
            bus=runner.bus,
            settings=runner.settings,
            emit=self._append_event,
        )
        self.cancel_requested = False
        self.executor = runner.settings.executor
        """The run's one Snakemake executor: the site's until its workflow is known
        (:meth:`_use_executor`), then what :func:`snakedeck.executors.resolve` makes of both."""
        self._stop_signal = stop_signal(self.executor)
        self.aborting = False
        """The runner is stopping: end the run as SYSTEM_ERROR."""
        self.lost = False
        """The claim was taken over (the run was declared lost): record nothing more."""
        self.proc: SnakemakeProcess | None = None
        self.adopted_pgid: int | None = None
        self.writer: SpoolWriter | None = None
        self.forwarder: Forwarder | None = None
        self.lock = threading.RLock()
        self.thread = threading.Thread(target=self._main, name=f"run:{run_id}", daemon=True)
        self.done = threading.Event()

    # -- lifecycle events -----------------------------------------------------------------------
    def _emit(self, new: RunState, **details: Any) -> bool:
        """Record a lifecycle step; illegal steps raise (a bug), a lost claim records nothing."""
        with self.lock:
            if self.lost:
                log.warning(
                    "run %s: not recording %s: this runner lost its claim", self.run_id, new
                )
                return False
            check_move(self.state, new)
            if is_terminal(new) and not self.runner.still_holds(self.run_id):
                self.lost = True
                log.warning("run %s: claim taken over; %s not recorded", self.run_id, new)
                return False
            event = envelope.run_state(self.run_id, new.value, attempt=self.attempt, **details)
            event["data"]["epoch"] = self.claim.epoch
            if new == RunState.INITIALIZING:
                event["data"]["runner"] = self.runner.runner_id
                event["data"]["host"] = self.runner.host
            assert self.writer is not None
            self.writer.append(event)
            self.state = new
            if is_terminal(new):
                self.events_closed = True
            log.info("run %s: %s %s", self.run_id, new.value, details.get("reason", ""))
            return True

    def _append_event(self, event: Envelope) -> bool:
        """The artefacts' own events (failures, resources) into the spool, while the attempt
        is open: after its terminal state nothing more is appended."""
        with self.lock:
            if self.lost or self.events_closed or self.writer is None:
                return False
            try:
                self.writer.append(event)
            except (OSError, ValueError) as exc:
                log.warning("run %s: event not written (%s)", self.run_id, exc)
                return False
            return True

    # -- the run's thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            if self.mode == "recover":
                self._recover()
            elif self.mode == "resume":
                self._resume()
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
        try:
            self.artefacts_left = not self.artefacts.drain(lambda: self.runner.stopping)
        except Exception:
            log.exception("run %s: shipping its artefacts failed", self.run_id)
        finally:
            self.artefacts.stop()
        self.runner.release(self, delivered=delivered)
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
        self.forwarder.start_thread(poll_interval=FORWARD_POLL, busy_poll=BUSY_POLL)

    def _execute(self) -> None:
        assert self.command is not None
        self.rd.create()
        self.writer = SpoolWriter(self.rd.spool)
        self._start_forwarder()
        self.artefacts.start()
        with self.lock:
            if self.cancel_requested:
                self._emit(RunState.CANCELED, reason="cancelled before it started")
                return
            self._emit(RunState.INITIALIZING)
        registry = self.runner.registry
        try:
            workflow = self._workflow(self.command["workflow"])
            config = registry.validate_config(workflow, self.command.get("config") or {})
            staged = stage_inputs(self.runner.store, self.rd, workflow, self.command.get("inputs"))
            config.update(staged.config())  # config["inputs"] and config["tables"]
            self.rd.write_config(config)
        except (WorkflowError, RunDirError, StoreError, OSError) as exc:
            self._could_not("prepare the run", "its inputs", exc)
            return
        self._launch(workflow)

    def _could_not(self, what: str, fetching: str, exc: Exception) -> None:
        """End the run SYSTEM_ERROR because it could not be prepared or resumed (called in the
        ``except``). A store error's text names the store's location: not for the reason."""
        if isinstance(exc, StoreError):
            log.exception("run %s: fetching %s from the store failed", self.run_id, fetching)
            reason = f"could not {what}: the store was unavailable to fetch {fetching}"
        elif isinstance(exc, OSError):
            reason = f"could not {what}: cannot write its run directory ({exc.strerror})"
        else:
            reason = f"could not {what}: {exc}"
        self._emit(RunState.SYSTEM_ERROR, reason=reason)

    def _workflow(self, name: str) -> Workflow:
        """The run's workflow: its own bundle (fetched into ``workflow/`` from the store, or the
        copy already there), else the registered one ``name`` names."""
        if self.bundle is not None:
            return stage_bundle(self.runner.store, self.rd, self.bundle, self.runner.settings)
        return self.runner.registry.get(name)

    def _cores(self) -> int:
        """The run's own ``cores`` (asked for at submit), never more than this runner's."""
        mine = self.runner.settings.cores
        asked = (self.command or {}).get("cores")
        if isinstance(asked, int) and not isinstance(asked, bool) and asked >= 1:
            return min(asked, mine)
        return mine

    def _launch(self, workflow: Workflow, *, rerun_incomplete: bool = False) -> None:
        """Start Snakemake (RUNNING), wait for it, store its artefacts, record how it ended."""
        self.artefacts.set_workflow(workflow)
        settings = self.runner.settings
        self._use_executor(executors.resolve(settings.executor, workflow.executor))
        try:
            chosen = executor_args(workflow.directory, self.executor, settings.profile)
            self.rd.write_executor(self.executor)  # read back if this runner restarts
        except ExecutorError as exc:
            asked = "" if settings.executor else f" (workflow.yaml asks for {self.executor!r})"
            self._emit(RunState.SYSTEM_ERROR, reason=f"could not start Snakemake: {exc}{asked}")
            return
        except OSError as exc:
            reason = f"could not start Snakemake: cannot write its run directory ({exc.strerror})"
            self._emit(RunState.SYSTEM_ERROR, reason=reason)
            return
        argv = snakemake_argv(
            workflow.snakefile,
            self.rd,
            self.run_id,
            self._cores(),
            rerun_incomplete=rerun_incomplete,
            executor=chosen,
        )
        with self.lock:
            if self.cancel_requested or self.aborting or self.lost:
                self._cancel_before_start()
                return
            try:
                grace = self.runner.settings.orphan_grace
                self.proc = SnakemakeProcess(argv, self.rd, orphan_grace=grace).start()
            except OSError as exc:
                self._emit(RunState.SYSTEM_ERROR, reason=f"could not start Snakemake: {exc}")
                return
            self._emit(RunState.RUNNING)
            self.artefacts.watch(self.proc.pgid)
        watcher = self._cluster_watcher()
        rc = self.proc.wait()
        if watcher is not None:
            watcher.stop()
        self.proc.reap_group()
        self._after_snakemake(rc)
        self._record_exit(rc)

    def _use_executor(self, executor: str) -> None:
        """Make ``executor`` the run's: what stops its Snakemake and whether it has cluster
        jobs follow from it."""
        with self.lock:
            self.executor = executor
            self._stop_signal = stop_signal(executor)

    def _cluster_watcher(self) -> cluster_jobs.Watcher | None:
        """While Snakemake runs (started here or adopted): where its cluster jobs run."""
        if self.executor in executors.BUILT_IN:
            return None
        return cluster_jobs.Watcher(
            self.run_id, self.rd.spool, since=self.spool_start, emit=self._append_event
        ).start()

    def _settle_cluster_jobs(self, *, stopped: bool) -> None:
        """Once Snakemake is gone: record what SLURM says of this attempt's jobs, ``scancel``
        those still queued when the run was stopped."""
        if self.executor in executors.BUILT_IN:
            return
        try:
            cluster_jobs.settle(
                self.run_id,
                self.rd.spool,
                since=self.spool_start,
                stopped=stopped,
                emit=self._append_event,
            )
        except Exception:  # the scheduler's answers must not keep the run from ending
            log.exception("run %s: asking the scheduler about its jobs failed", self.run_id)

    def _after_snakemake(self, rc: int) -> None:
        complete = rc == 0 and not self.aborting and not self.lost
        stopped = self.cancel_requested or self.aborting or self.lost
        # CANCELING without a request to this handle: cancelled before the runner restarted.
        self._settle_cluster_jobs(stopped=stopped or self.state == RunState.CANCELING)
        self._store_last_artefacts(complete=complete)

    def _store_last_artefacts(self, *, complete: bool) -> None:
        try:
            self.artefacts.after_snakemake(
                complete=complete, should_stop=lambda: self.aborting or self.lost
            )
        except Exception:  # artefacts must not keep the run from ending
            log.exception("run %s: storing its last artefacts failed", self.run_id)

    def _resume(self) -> None:
        """The next attempt of a run that ended failed or cancelled: Snakemake again in the
        same work directory with ``--rerun-incomplete``, so finished jobs stay done, and its
        events appended to the same spool (seq goes on)."""
        if not self.rd.exists():  # the runner checks before it takes the command
            raise RunDirError("the run's directory is not on this runner")
        self.spool_start = self.rd.spool.stat().st_size
        for stale in (self.rd.exit_status, self.rd.cancel_marker, self.rd.pid, self.rd.executor):
            stale.unlink(missing_ok=True)  # the last attempt's: not this one's
        if self.rd.clear_stale_locks():  # the last attempt's Snakemake was SIGKILLed
            log.info("run %s: removed the locks its killed Snakemake left", self.run_id)
        self.writer = SpoolWriter(self.rd.spool)
        self._start_forwarder()
        self.artefacts.start(history_ended=True)
        with self.lock:
            if self.cancel_requested:
                self._emit(RunState.CANCELED, reason="cancelled before it started")
                return
            self._emit(RunState.INITIALIZING, reason=f"resumed (attempt {self.attempt})")
        try:
            workflow = self._workflow(self.workflow_name or "")
            if not self.rd.config.is_file():
                raise RunDirError("its config.json is missing")
        except (WorkflowError, RunDirError, StoreError, OSError) as exc:
            self._could_not("resume the run", "its workflow", exc)
            return
        self._launch(workflow, rerun_incomplete=True)

    def _cancel_before_start(self) -> None:
        if self.lost:
            return
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
        summary = SpoolSummary(self.rd.spool, since=self.spool_start)
        with self.lock:
            if self.lost:
                return
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

    # -- recovery after a crash of this runner ---------------------------------------------------
    def _recover(self) -> None:
        """This runner claimed the run before it restarted: adopt or judge what is left."""
        if not self.rd.exists():
            self.rd.create()
        summary = SpoolSummary(self.rd.spool)
        self.writer = SpoolWriter(self.rd.spool)
        self.state = summary.last_state or RunState.QUEUED
        self.attempt = summary.last_attempt
        self.spool_start = summary.attempt_start  # a resumed run: this attempt's jobs only
        self._start_forwarder()
        self._recover_workflow()
        if is_terminal(self.state):
            log.info("run %s: ended before the restart; forwarding what is left", self.run_id)
            self.events_closed = True
            self.artefacts.start(history_ended=True)
            self.artefacts.shipper.finish_attempt(time.monotonic() + 30.0)
            return
        self.artefacts.start()
        status = exit_status.read(self.rd.exit_status)
        pgid = leftover_group(self.rd, self.run_id) if status is None else None
        if pgid is not None:
            log.warning("run %s: adopting its Snakemake (process group %d)", self.run_id, pgid)
            exit_status.supervise(self.rd.root, os.getpid())
            self.artefacts.watch(pgid)
            watcher = self._cluster_watcher()
            try:
                self._watch_adopted(pgid)
            finally:
                if watcher is not None:
                    watcher.stop()
            status = exit_status.read(self.rd.exit_status)
        if status is not None and self.state in (RunState.RUNNING, RunState.CANCELING):
            self._after_snakemake(status.returncode)
        elif self.state in (RunState.RUNNING, RunState.CANCELING):
            # No exit status (the group was SIGKILLed after the cancel grace, or Snakemake
            # died with the runner down): nothing watches its cluster jobs any more.
            self._settle_cluster_jobs(stopped=True)
            if pgid is not None:
                self._store_last_artefacts(complete=False)
        with self.lock:
            if status is not None and self.state in (RunState.RUNNING, RunState.CANCELING):
                self._record_exit(status.returncode)
            elif self.state == RunState.CANCELING:
                why = "" if self.cancel_requested else " (the runner restarted meanwhile)"
                self._emit(RunState.CANCELED, reason="cancelled" + why)
            elif status is None and self.state == RunState.RUNNING:
                self._emit(
                    RunState.SYSTEM_ERROR,
                    reason="Snakemake ended while its runner was down and left no exit status",
                )
            else:
                self._emit(
                    RunState.SYSTEM_ERROR,
                    reason="the runner restarted before Snakemake started",
                )

    def _recover_workflow(self) -> None:
        """The run's workflow (its results), as the store or the command names it, and the
        executor its Snakemake was started with: as recorded at launch, else resolved again."""
        name = self.workflow_name
        workflow: Workflow | None = None
        try:
            if name is None or self.bundle is None:
                run = self.runner.store.get_run(self.run_id) or {}
                name = name or run.get("workflow")
                if bundles.is_private(run):
                    self.bundle = run.get("workflow_bundle") or {}
            if self.bundle is not None:  # the run's own copy, never the registry's
                workflow = self._workflow("")
            elif name:
                workflow = self.runner.registry.get(name)
            if workflow is not None:
                self.artefacts.set_workflow(workflow)
        except (StoreError, WorkflowError, RunDirError) as exc:
            log.warning("run %s: its results cannot be found now (%s)", self.run_id, exc)
        recorded = self.rd.read_executor()
        if recorded is not None:
            self._use_executor(recorded)
        elif workflow is not None:
            self._use_executor(executors.resolve(self.runner.settings.executor, workflow.executor))

    def _watch_adopted(self, pgid: int) -> None:
        with self.lock:
            self.adopted_pgid = pgid
            if self.cancel_requested and self.state in (RunState.INITIALIZING, RunState.RUNNING):
                # Asked while the run's state was still being read back from the spool.
                self.rd.mark_cancel()
                self._emit(RunState.CANCELING, reason="cancel requested")
            # CANCELING as read back: the runner died between recording it and stopping.
            if (
                self.cancel_requested
                or self.aborting
                or self.lost
                or self.state == RunState.CANCELING
            ):
                self._signal_group(self.runner.settings.cancel_grace)
        while group_members(pgid):
            time.sleep(ADOPT_POLL)
        with self.lock:
            self.adopted_pgid = None

    # -- forwarding to the end --------------------------------------------------------------------
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
                        "run %s: broker unavailable at shutdown; the spool will be forwarded "
                        "when this runner starts again",
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
                self._signal_group(self.runner.settings.cancel_grace)

    def abort(self) -> None:
        """The runner is stopping: end this run now (SIGTERM, SIGKILL after the grace)."""
        with self.lock:
            self.aborting = True
            if not is_terminal(self.state):
                self.rd.mark_cancel()
                self._signal_group(self.runner.settings.cancel_grace)

    def lose(self, why: str) -> None:
        """The claim is no longer this runner's (the run was declared lost): stop Snakemake and
        record nothing more; what the spool holds is still forwarded."""
        with self.lock:
            if self.lost:
                return
            self.lost = True
            log.warning("run %s: %s; stopping its Snakemake", self.run_id, why)
            self.rd.mark_cancel()
            self._signal_group(self.runner.settings.cancel_grace)

    def _signal_group(self, grace: float) -> None:
        if self.proc is not None:
            self.proc.terminate(grace, self._stop_signal)
        elif self.adopted_pgid is not None:
            pgid = self.adopted_pgid
            kill_group(pgid, self._stop_signal)
            timer = threading.Timer(grace, lambda: _kill_if_left(pgid))
            timer.daemon = True
            timer.start()


def _kill_if_left(pgid: int) -> None:
    """The adopted group still runs after the grace: SIGKILL (not a group gone meanwhile)."""
    if group_members(pgid):
        log.warning("process group %d still running after the grace; SIGKILL", pgid)
        kill_group(pgid, signal.SIGKILL)


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
