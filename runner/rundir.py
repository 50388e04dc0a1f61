"""The directory of one run: ``DATA_DIR/runs/<run_id>/``.

::

    config.json          the run's configuration (schema defaults filled, inputs resolved)
    events.jsonl         the spool (plugin and runner append, the forwarder reads)
    events.jsonl.ckpt    the forwarder's checkpoint
    events.jsonl.cancel  present once a cancel was requested (the plugin reads it)
    snakemake.log        Snakemake's stdout and stderr
    snakemake.pid        pid (= process group id) of the run's Snakemake
    work/                Snakemake's --directory: outputs and job logs

Stdlib only: the logger plugin imports :func:`cancel_marker_path`.
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

    def exists(self) -> bool:
        return self.spool.exists()

    def create(self) -> RunDir:
        self.work.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict[str, Any]) -> Path:
        """Write ``config.json`` atomically."""
        tmp = self.config.with_name(f".config.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False))
        os.replace(tmp, self.config)
        return self.config

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


def resolve_inputs(files_dir: Path, inputs: list[dict[str, Any]] | None) -> dict[str, str]:
    """``{name: absolute path}`` for a run's registered input files.

    An input names a registered file by ``file_id`` (and optionally carries the ``path`` the
    files module stored it at). Only paths inside ``files_dir`` are accepted; the file must exist.
    """
    base = Path(files_dir).resolve()
    out: dict[str, str] = {}
    for i, item in enumerate(inputs or []):
        if not isinstance(item, dict):
            raise RunDirError(f"inputs[{i}] is not an object")
        file_id = item.get("file_id")
        name = item.get("name") or file_id
        if not isinstance(name, str) or not name:
            raise RunDirError(f"inputs[{i}] has neither a name nor a file_id")
        candidates: list[Path] = []
        if isinstance(item.get("path"), str) and item["path"]:
            p = Path(item["path"])
            candidates.append(p if p.is_absolute() else base / p)
        if (
            isinstance(file_id, str)
            and file_id
            and "/" not in file_id
            and file_id not in (".", "..")
        ):
            candidates.append(base / file_id)
        found: Path | None = None
        for cand in candidates:
            cand = cand.resolve()
            if not cand.is_relative_to(base):
                raise RunDirError(f"input {name!r}: {cand} is outside {base}")
            if cand.is_dir():
                files = sorted(
                    p for p in cand.iterdir() if p.is_file() and not p.name.startswith(".")
                )
                if len(files) == 1:
                    cand = files[0]
            if cand.is_file():
                found = cand
                break
        if found is None:
            raise RunDirError(f"input {name!r} (file {file_id!r}) was not found in {base}")
        out[name] = str(found)
    return out
