"""The artefacts of one run as its :class:`~runner.run.RunHandle` drives them: the shipper
(logs, failures, results, report) and the resource sampler, started and ended with the run.

The run's end waits for them only boundedly: :data:`FINAL_FLUSH_SECONDS` for the last logs,
failures and results (and the report's own time limit), after which the run's terminal state
is recorded; whatever could not be stored yet (the store is down) keeps being shipped for up
to :data:`DRAIN_SECONDS` afterwards, and a runner that restarts ships the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from runner.results import Results, make_report
from runner.sampler import ResourceSampler
from runner.shipper import ArtefactShipper, Emit
from snakedeck.bus.base import Bus
from snakedeck.rundir import RunDir
from snakedeck.settings import Settings
from snakedeck.store import Store
from snakedeck.workflows import Workflow

log = logging.getLogger(__name__)

FINAL_FLUSH_SECONDS: Final = 30.0
DRAIN_SECONDS: Final = 300.0


class RunArtefacts:
    def __init__(
        self,
        run_id: str,
        rd: RunDir,
        *,
        store: Store,
        bus: Bus,
        settings: Settings,
        emit: Emit,
    ) -> None:
        self.run_id = run_id
        self.rd = rd
        self.settings = settings
        self.emit = emit
        self.shipper = ArtefactShipper(run_id, rd, store, bus, emit, max_result=settings.max_result)
        self.sampler: ResourceSampler | None = None
        self.workflow: Workflow | None = None

    def start(self, *, history_ended: bool = False) -> None:
        """Begin shipping (after one synchronous round; see :meth:`ArtefactShipper.prime`)."""
        try:
            self.shipper.prime(history_ended=history_ended)
        except Exception:  # the store may be down: the thread tries again
            log.exception("run %s: first shipping round failed", self.run_id)
        self.shipper.start()

    def set_workflow(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.shipper.set_results(Results(self.rd.work, workflow.results))
        self.shipper.redact_prefix(workflow.directory, f"<workflow {workflow.name}>/")

    def watch(self, pgid: int) -> None:
        """Sample the processes of Snakemake's group."""
        self.sampler = ResourceSampler(
            self.run_id,
            pgid,
            self.shipper.jobs,
            self.emit,
            interval=self.settings.sample_interval,
        ).start()

    def after_snakemake(self, *, complete: bool, should_stop: Callable[[], bool]) -> None:
        """Snakemake has exited: measure the last, emit every failure, store the results and
        (for a COMPLETE run of a workflow that asks for it) Snakemake's report."""
        self.shipper.round()  # the jobs' last events, read before the sampler's last word
        if self.sampler is not None:
            self.sampler.stop()
        self.shipper.finish_attempt(time.monotonic() + FINAL_FLUSH_SECONDS)
        if complete and self.workflow is not None and self.workflow.report and not should_stop():
            report = make_report(self.workflow, self.rd, should_stop=should_stop)
            if report is not None:
                self.shipper.add_report(report)
            self.shipper.finish_attempt(time.monotonic() + FINAL_FLUSH_SECONDS)

    def drain(self, should_stop: Callable[[], bool]) -> bool:
        """After the run's end: ship what is left (bounded)."""
        return self.shipper.drain(time.monotonic() + DRAIN_SECONDS, should_stop)

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.shipper.stop()
