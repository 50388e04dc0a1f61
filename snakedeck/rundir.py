"""The directory of one run: ``DATA_DIR/runs/<run_id>/``.

::

    config.json          the run's configuration (schema defaults filled, inputs resolved)
    events.jsonl         the spool (plugin and runner append, the forwarder reads)
    events.jsonl.ckpt    the forwarder's checkpoint
    events.jsonl.cancel  present once a cancel was requested (the plugin reads it)
    snakemake.log        Snakemake's stdout and stderr
    snakemake.pid        pid (= process group id) of the run's Snakemake (under its exit recorder)
    exit.json            how Snakemake ended (written by runner.exit_status, which outlives us)
    work/                Snakemake's --directory: outputs and job logs
    workflow/            a private workflow's files (WES attachments), fetched from the store

Stdlib only: the logger plugin imports :func:`cancel_marker_path` at every Snakemake start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakedeck import envelope

CANCEL_SUFFIX = ".cancel"


class RunDirError(ValueError):
    """A run id or input path that must not be used as a path."""


def cancel_marker_path(spool_path: str | os.PathLike[str]) -> Path:
    """The file whose existence tells the plugin that job errors from now on are the cancel's."""
    path = Path(spool_path)
    return path.with_name(path.name + CANCEL_SUFFIX)


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def workflow(self) -> Path:
        """A private workflow's own folder (its attachments), beside ``work/``."""
        return self.root / "workflow"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def spool(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def cancel_marker(self) -> Path:
        return cancel_marker_path(self.spool)

    @property
    def log(self) -> Path:
        return self.root / "snakemake.log"

    @property
    def pid(self) -> Path:
        return self.root / "snakemake.pid"

    @property
    def exit_status(self) -> Path:
        return self.root / "exit.json"

    @property
    def executor(self) -> Path:
        """The Snakemake executor this attempt's Snakemake was started with (``""``: local)."""
        return self.root / "executor"

    @property
    def snakemake_locks(self) -> Path:
        return self.work / ".snakemake" / "locks"

    def exists(self) -> bool:
        return self.spool.exists()

    def clear_stale_locks(self) -> int:
        """Remove the locks a killed Snakemake left in the work directory; how many.

        Only the run's own Snakemake works there, and callers clear only once it has ended,
        so every lock left is stale: a Snakemake SIGKILLed after the cancel grace leaves its
        locks, and the next attempt would refuse to start ("Directory cannot be locked")."""
        try:
            locks = [p for p in self.snakemake_locks.iterdir() if p.suffix == ".lock"]
        except OSError:
            return 0
        for lock in locks:
            lock.unlink(missing_ok=True)
        return len(locks)

    def create(self) -> RunDir:
        self.work.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict[str, Any]) -> Path:
        """Write ``config.json`` atomically."""
        tmp = self.config.with_name(f".config.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False))
        os.replace(tmp, self.config)
        return self.config

    def write_executor(self, executor: str) -> None:
        self.executor.write_text(executor + "\n", encoding="utf-8")

    def read_executor(self) -> str | None:
        """The executor recorded at launch, or ``None`` (none recorded, or unreadable)."""
        try:
            return self.executor.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None

    def mark_cancel(self) -> None:
        self.cancel_marker.touch()

    def tail_log(self, max_bytes: int = 2000) -> str:
        """The end of ``snakemake.log`` (for the reason of a run that could not start)."""
        try:
            with self.log.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - max_bytes))
                return f.read().decode("utf-8", errors="replace").strip()
        except OSError:
            return ""


def run_dir(runs_dir: Path, run_id: str) -> RunDir:
    """The run's directory; refuses a run id that is not a plain, safe name."""
    if not isinstance(run_id, str) or not envelope.is_valid_run_id(run_id):
        raise RunDirError(f"run id {run_id!r} is not a valid run id")
    base = Path(runs_dir).resolve()
    root = (base / run_id).resolve()
    if root.parent != base:
        raise RunDirError(f"run id {run_id!r} escapes {base}")
    return RunDir(root)
