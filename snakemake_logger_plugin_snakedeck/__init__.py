"""snakedeck's Snakemake logger plugin: ``snakemake --logger snakedeck``.

Inside the Snakemake process it only turns log records into event envelopes and appends them to a
spool file (one JSON line each, no network, no waiting).

- **Runner mode** (the runner passes ``--logger-snakedeck-spool`` and ``--logger-snakedeck-run-id``
  and no AMQP URL): spool only. The runner owns the run's lifecycle and forwards the spool.
- **Hand-run mode** (a user's own ``snakemake``; an AMQP URL from ``--logger-snakedeck-amqp-url``,
  or ``SNAKEDECK_AMQP_URL`` when no spool path is given): the plugin generates a run id unless one
  is given, spools to ``.snakemake/snakedeck/<run_id>.jsonl``, writes the run's ``run_state``
  events itself and forwards the spool to RabbitMQ from a process of its own beside Snakemake
  (:mod:`.forwarding`, so pika and the confirms never share Snakemake's interpreter). Whatever is
  not delivered when Snakemake ends stays in the spool for ``snakedeck replay SPOOL``. Without
  any AMQP URL it still records the run in the spool, for a later replay.

Snakemake imports every installed logger plugin at every start: this module imports the stdlib,
the logger-plugin interface and snakedeck's stdlib-only modules, nothing more (pika only in the
forwarding process).
"""

import contextlib
import logging
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from snakedeck import cluster, envelope
from snakedeck.rundir import cancel_marker_path
from snakedeck.spool import SpoolWriter
from snakedeck.states import RunState, path_to

DEFAULT_DRAIN_TIMEOUT = 10.0
FORWARDING_GRACE = 10.0
"""Seconds the forwarding process may take beyond the drain timeout (its start-up: pika)."""
HAND_RUN_SPOOL_DIR = Path(".snakemake") / "snakedeck"

# Attributes every LogRecord has; whatever else is in a record's __dict__ is Snakemake's payload.
_RECORD_ATTRS = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "event",
}
_LEVELS = {"warn": "warning", "fatal": "critical"}
_FAILURE_EVENTS = frozenset({"job_error", "group_error", "error"})
_JOB_FAILURE_EVENTS = frozenset({"job_error", "group_error"})
# What Snakemake logs when it is asked to stop: SIGINT ("Terminating processes on user
# request", "Cancelling snakemake on user request") and SIGTERM ("Will exit after finishing
# currently running jobs").
_CANCEL_MARKERS = ("on user request", "Will exit after finishing currently running jobs")


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    spool: str | None = field(
        default=None,
        metadata={
            "type": str,
            "help": "Spool file (JSON lines) to append events to. Given by the snakedeck runner; "
            "by hand it defaults to .snakemake/snakedeck/<run_id>.jsonl.",
        },
    )
    run_id: str | None = field(
        default=None,
        metadata={
            "type": str,
            "help": "Run id of the events (generated for a hand-run when not given).",
        },
    )
    amqp_url: str | None = field(
        default=None,
        metadata={
            "type": str,
            "help": "RabbitMQ URL to forward events to while Snakemake runs (hand-run mode). "
            "Default: SNAKEDECK_AMQP_URL, unless a spool is given.",
        },
    )
    namespace: str | None = field(
        default=None,
        metadata={
            "type": str,
            "help": "snakedeck namespace (exchange prefix). Default: SNAKEDECK_NAMESPACE.",
        },
    )
    drain_timeout: float | None = field(
        default=None,
        metadata={
            "help": "Seconds to wait at exit for undelivered events (hand-run mode); the rest "
            f"stays in the spool for `snakedeck replay`. Default {DEFAULT_DRAIN_TIMEOUT}.",
            "type": float,
        },
    )
    workflow: str | None = field(
        default=None,
        metadata={
            "type": str,
            "help": "Workflow name recorded for a hand-run. Default: the Snakefile's folder name.",
        },
    )


def record_to_envelope(run_id: str, record: logging.LogRecord) -> dict[str, Any]:
    """One Snakemake log record as an event envelope (``seq`` left for the forwarder)."""
    raw_event = record.__dict__.get("event")
    kind = getattr(raw_event, "value", raw_event)
    data = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}
    if kind is None:
        kind = "log"
    elif kind not in envelope.SNAKEMAKE_TYPES:
        data["event"] = str(kind)
        kind = "log"
    level = record.levelname.lower()
    level = _LEVELS.get(level, level)
    if level not in envelope.LEVELS:
        level = "info"
    msg = record.msg if isinstance(record.msg, str) else ("" if record.msg is None else record.msg)
    if not isinstance(msg, str):
        msg = str(msg)
    elif record.args:
        # Not yet formatted (the record did not pass Snakemake's QueueHandler).
        with contextlib.suppress(TypeError, ValueError):
            msg = record.getMessage()
    if msg == "None" and kind != "log":
        msg = ""  # QueueHandler formats a record without a message as "None"
    return envelope.make(
        run_id,
        kind,
        data=data,
        msg=msg,
        level=level,
        source="snakemake",
        ts=envelope.iso_from_epoch(record.created),
    )


def _as_cancelled(event: dict[str, Any]) -> None:
    """A job killed by the run's cancellation: record it as a warning line, not a job failure
    (the job stays open, and the run's terminal CANCELED settles it as ``cancelled``)."""
    event["data"]["event"] = event["type"]
    event["data"]["cancelled"] = True
    event["type"] = "log"
    event["level"] = "warning"
    event["msg"] = f"cancelled: {event['msg']}".strip()


def guess_workflow_name(argv: list[str] | None = None, cwd: Path | None = None) -> str:
    """The folder name of the Snakefile Snakemake will use (``--snakefile``/``-s`` or the default
    search), for a hand-run that was not given ``--logger-snakedeck-workflow``."""
    argv = sys.argv[1:] if argv is None else argv
    cwd = Path.cwd() if cwd is None else cwd
    snakefile: str | None = None
    for i, arg in enumerate(argv):
        if arg in ("--snakefile", "-s") and i + 1 < len(argv):
            snakefile = argv[i + 1]
        elif arg.startswith("--snakefile="):
            snakefile = arg.split("=", 1)[1]
    if snakefile is not None:
        path = (cwd / snakefile).resolve()
    else:
        path = cwd / "Snakefile"
        for name in ("Snakefile", "snakefile", "workflow/Snakefile", "workflow/snakefile"):
            if (cwd / name).is_file():
                path = (cwd / name).resolve()
                break
    folder = path.parent
    if folder.name == "workflow" and snakefile is None:
        folder = folder.parent
    return folder.name or "snakemake"


class LogHandler(LogHandlerBase):
    """Append every record to the run's spool; in hand-run mode also forward it."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._writer: SpoolWriter | None = None
        self._forwarder: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._failure_msg = ""
        self._interrupted = False
        self._started = False
        self._cancel_marker: Path | None = None
        self.hand_run = False
        self.run_id = ""
        self.spool_path: Path | None = None
        if getattr(self.common_settings, "dryrun", False):
            return  # a dry-run executes nothing: record nothing
        s = self.settings if isinstance(self.settings, LogHandlerSettings) else None
        spool = s.spool if s else None
        run_id = s.run_id if s else None
        amqp_flag = s.amqp_url if s else None

        # Runner mode: the runner gave the spool and forwards it itself.
        self.hand_run = spool is None or amqp_flag is not None

        if run_id is None:
            run_id = uuid.uuid4().hex
        if not envelope.is_valid_run_id(run_id):
            raise ValueError(
                f"--logger-snakedeck-run-id {run_id!r}: use up to {envelope.MAX_RUN_ID_LEN} "
                "letters, digits, '-' or '_', starting with a letter or digit"
            )
        self.run_id = run_id
        self.spool_path = (
            Path(spool) if spool else Path.cwd() / HAND_RUN_SPOOL_DIR / f"{run_id}.jsonl"
        ).absolute()
        self._writer = SpoolWriter(self.spool_path)
        if not self.hand_run:
            self._cancel_marker = cancel_marker_path(self.spool_path)
            return

        env = _env_settings(namespace=s.namespace if s else None)
        amqp_url = amqp_flag
        if amqp_url is None and spool is None:
            amqp_url = env.amqp_url if env is not None else os.environ.get("SNAKEDECK_AMQP_URL")
        self._drain_timeout = (
            s.drain_timeout if s and s.drain_timeout is not None else DEFAULT_DRAIN_TIMEOUT
        )
        # The run's registration: the first event of a hand-run creates its run in the store.
        self._state = RunState.QUEUED
        self._move(
            RunState.INITIALIZING,
            workflow=(s.workflow if s else None) or guess_workflow_name(),
            hand_run=True,
        )
        _say(f"recording run {run_id} in {self.spool_path}")
        if amqp_url:
            self._start_forwarding(amqp_url, env)

    def _start_forwarding(self, amqp_url: str, env: Any) -> None:
        """Start the forwarding process (:mod:`.forwarding`) beside Snakemake: a thread here
        would share Snakemake's interpreter, and pika's work would slow the workflow."""
        try:
            from snakedeck.settings import Settings

            settings = (env if env is not None else Settings()).with_(amqp_url=amqp_url)
            child_env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
            child_env.update(settings.to_env())
            assert self.spool_path is not None
            self._forwarder = subprocess.Popen(
                [
                    sys.executable, "-m", "snakemake_logger_plugin_snakedeck.forwarding",
                    str(self.spool_path), "--drain-timeout", str(self._drain_timeout),
                ],
                stdin=subprocess.PIPE, env=child_env,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - forwarding is best effort; the spool keeps all
            _say(f"cannot forward events to RabbitMQ ({exc}); they stay in {self.spool_path}")
            self._forwarder = None

    # -- logging.Handler ------------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            event = record_to_envelope(self.run_id, record)
            if event["type"] in _JOB_FAILURE_EVENTS and self._cancelling():
                _as_cancelled(event)
            if event["type"] in _FAILURE_EVENTS:
                self._failed = True
                self._failure_msg = self._failure_msg or event["msg"][:500]
            elif any(marker in event["msg"] for marker in _CANCEL_MARKERS):
                self._interrupted = True
            writer.append(event)
            submitted = cluster.parse_submission(event["msg"]) if event["type"] == "log" else None
            if submitted is not None:  # the executor plugin's "Job 3 … SLURM jobid 17"
                writer.append(
                    envelope.make(
                        self.run_id,
                        "job_cluster",
                        data=submitted,
                        msg=event["msg"],
                        source="snakemake",
                        ts=event["ts"],
                    )
                )
            if event["type"] == "workflow_started" and self.hand_run:
                self._started = True
                self._move(RunState.RUNNING)
        except Exception:  # noqa: BLE001 - logging must never break the workflow
            self.handleError(record)

    def _move(self, new: RunState, **data: Any) -> None:
        """Record the hand-run's lifecycle through the legal steps to ``new`` (a hand-run only
        learns where it ended up; :func:`snakedeck.states.path_to` fills in the way there)."""
        assert self._writer is not None
        for step in path_to(self._state, new):
            reason = str(data.get("reason") or "") if step == new else ""
            event = envelope.run_state(self.run_id, step.value, reason=reason)
            if step == new:
                event["data"].update({k: v for k, v in data.items() if k != "reason"})
            self._writer.append(event)
            self._state = step

    def _cancelling(self) -> bool:
        """Whether the runner has asked this run to stop (it touches the marker before it
        signals the process group, so the jobs dying from that signal are not failures)."""
        return self._cancel_marker is not None and self._cancel_marker.exists()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._finish()
        finally:
            super().close()

    def _finish(self) -> None:
        writer = self._writer
        if writer is None:
            return
        if self.hand_run:
            try:
                if self._interrupted:
                    self._move(RunState.CANCELED, reason="interrupted")
                elif self._failed:
                    # Failing before the workflow started (e.g. a broken Snakefile) is the same
                    # SYSTEM_ERROR the runner reports for a run that could not start.
                    self._move(
                        RunState.EXECUTOR_ERROR if self._started else RunState.SYSTEM_ERROR,
                        reason=self._failure_msg or "Snakemake failed",
                    )
                else:
                    self._move(RunState.COMPLETE)
            except OSError as exc:
                _say(f"cannot write the final run state to {self.spool_path}: {exc}")
        writer.close()
        self._writer = None
        if not self.hand_run:
            return
        delivered = self._forwarder is not None and self._stop_forwarding()
        if delivered:
            _say(f"run {self.run_id}: every event delivered")
        else:
            _say(
                f"run {self.run_id}: events not yet delivered stay in {self.spool_path}; "
                f"deliver them with: snakedeck replay {self.spool_path}"
            )

    def _stop_forwarding(self) -> bool:
        """Tell the forwarding process the spool is complete; True once it confirmed it all."""
        child = self._forwarder
        assert child is not None and child.stdin is not None
        with contextlib.suppress(OSError):
            child.stdin.close()  # its end of file: drain and exit
        try:
            # Its own drain is bounded by the drain timeout; the rest is its start-up.
            return child.wait(self._drain_timeout + FORWARDING_GRACE) == 0
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return False

    # -- LogHandlerBase -------------------------------------------------------------------------
    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every event, whatever the console's quietness

    @property
    def has_formatter(self) -> bool:
        return True  # records arrive formatted through Snakemake's QueueHandler

    @property
    def needs_rulegraph(self) -> bool:
        return True  # the dashboard draws it


def _env_settings(namespace: str | None) -> Any:
    try:
        from snakedeck.settings import Settings

        return Settings.from_env(namespace=namespace)
    except ValueError as exc:
        _say(f"ignoring SNAKEDECK_* settings: {exc}")
        return None


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"snakedeck: {text}", file=sys.stderr, flush=True)
