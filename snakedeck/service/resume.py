"""Resume: a failed or cancelled run goes again in its own work directory, on its runner."""

from __future__ import annotations

import time
from typing import Any

from snakedeck import envelope, eta, messages, projection
from snakedeck.auth import Principal, Role
from snakedeck.bus.base import BusError
from snakedeck.documents import (
    RunDoc,
)
from snakedeck.paging import MAX_PAGE_SIZE
from snakedeck.service.access import audited, require, require_owner
from snakedeck.service.base import Doc, ServiceBase
from snakedeck.service.errors import Conflict, Unavailable, unavailable_on_backend_errors
from snakedeck.states import InvalidTransition, JobState, RunState, check_resume
from snakedeck.store import (
    JobFilter,
    RunFilter,
)
from snakedeck.store.claims import REAPER


class Resume(ServiceBase):
    """Resume and the run's time estimate."""

    @audited("run.resume", target="run_id", status=202)
    @unavailable_on_backend_errors
    def resume_run(self, run_id: str, *, by: Principal) -> Doc:
        """Run a failed or cancelled run again in its own work directory, as its next attempt:
        Snakemake with ``--rerun-incomplete``, so finished jobs are not redone. Only the runner
        that holds the directory can: 409 if it is gone, or the run cannot be resumed."""
        require(by, Role.SUBMIT, "resuming a run")
        run = self._run(run_id)
        require_owner(by, run, "resuming a run")
        if run.get("hand_run"):
            raise Conflict(f"run {run_id} is a Snakemake started by hand: resume it where it ran")
        try:
            check_resume(run.get("state"))
        except InvalidTransition as exc:
            raise Conflict(f"run {run_id} cannot be resumed: {exc}") from None
        runner = run.get("runner")
        if not runner:
            raise Conflict(
                f"run {run_id} never reached a runner (it ended {run.get('state')} before "
                "one took it up): nothing to resume; submit it again with rerun"
            )
        claim = self.store.get_claim(run_id)
        if run.get("declared_by") or (claim is not None and claim.runner_id == REAPER):
            raise Conflict(
                f"run {run_id} was declared lost (its runner {runner} stopped heartbeating): "
                "its work directory cannot be trusted; rerun it instead"
            )
        status = next((r for r in self.runners() if r["runner_id"] == runner), None)
        if status is None or status["state"] != "live":
            seen = (
                f"last seen {status['seconds_since_heartbeat']:.0f} s ago"
                if status is not None
                else "no longer known to the runner registry"
            )
            raise Conflict(
                f"run {run_id}'s work directory is on runner {runner} (host "
                f"{run.get('host') or '?'}), which is not running ({seen}); start that runner "
                "again to resume it, or rerun the run"
            )
        now = envelope.now_iso()
        started: dict[str, Any] = {}

        def begin(current: RunDoc) -> dict[str, Any] | None:
            if current.get("state") != run.get("state") or current.get("attempt") != run.get(
                "attempt"
            ):
                return None  # resumed (or changed) meanwhile
            projection.start_attempt(current, at=now, by=by.name)
            started["attempt"] = current["attempt"]
            return {k: current.get(k) for k in projection.ATTEMPT_FIELDS}

        if self.store.modify_run(run_id, begin) is None:
            raise Conflict(f"run {run_id} changed while it was resumed; look at it again")
        attempt = int(started["attempt"])
        try:
            self.bus.send_to_runner(runner, dict(messages.resume(run_id, attempt)))
        except BusError as exc:
            reason = f"could not hand the resume to runner {runner}: the broker is unavailable"
            self.store.modify_run(
                run_id,
                lambda current: {
                    k: projection.fail_attempt(current, reason, at=envelope.now_iso()).get(k)
                    for k in projection.ATTEMPT_FIELDS
                },
            )
            raise Unavailable(f"run {run_id} was not resumed: {reason} ({exc})") from None
        return {"run_id": run_id, "state": RunState.QUEUED.value, "attempt": attempt,
                "runner": runner}  # fmt: skip

    def _eta(self, run: RunDoc) -> Doc | None:
        """The estimate of an active run's remaining time (see :mod:`snakedeck.eta`)."""
        workflow = run.get("workflow")
        history: list[Any] = []
        if workflow:
            page = self.store.list_runs(
                RunFilter(state=RunState.COMPLETE.value, workflow=workflow),
                page_size=eta.HISTORY_RUNS,
            )
            history = [r.get("rule_durations") or {} for r in page.items]
        running = self.store.list_jobs(
            run["run_id"], JobFilter(state=JobState.RUNNING.value), page_size=MAX_PAGE_SIZE
        ).items
        return eta.estimate(  # type: ignore[return-value]
            run,
            current=self.store.rule_durations(run["run_id"]),
            history=history,
            running=running,
            now=time.time(),
        )
