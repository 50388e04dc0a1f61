"""A run's results: the files of its work directory that its workflow declares (``results:``
globs in ``workflow.yaml``), and Snakemake's own HTML report.

A file is stored once it is complete: as the job that wrote it finishes (its ``job_finished``
names the job, whose outputs are then final), and after the run for whatever else matches,
unless Snakemake marked it incomplete (a job killed while writing it). Only regular files
inside the work directory are read (no symlink leads out of it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from snakedeck.rundir import RunDir
from snakedeck.store.artefacts import REPORT_PATH, is_output_path
from snakedeck.workflows import ResultSpec, Workflow

log = logging.getLogger(__name__)

__all__ = ["REPORT_PATH", "Result", "Results", "incomplete", "make_report"]

REPORT_TIMEOUT: Final = 300.0


@dataclass(frozen=True)
class Result:
    path: str
    """Relative to the work directory, with ``/`` separators."""
    spec: ResultSpec
    file: Path


class Results:
    """Which files of a run's work directory are its results."""

    def __init__(self, work: Path, specs: tuple[ResultSpec, ...]) -> None:
        self.work = work
        self.specs = specs

    def spec_of(self, rel: str) -> ResultSpec | None:
        pure = PurePosixPath(rel)
        for spec in self.specs:
            if pure.full_match(spec.path):
                return spec
        return None

    def result(self, rel: str) -> Result | None:
        """The result at ``rel`` (a job's output path), if it is one and a safe regular file."""
        rel = rel.replace(os.sep, "/").removeprefix("./")
        spec = self.spec_of(rel)
        if spec is None or not is_output_path(rel):
            return None
        file = self._inside(self.work / rel)
        return None if file is None else Result(rel, spec, file)

    def scan(self) -> Iterator[Result]:
        """Every file the globs match now, except those Snakemake marked incomplete."""
        seen: set[str] = set()
        root = self.work.resolve()
        for spec in self.specs:
            try:
                matches = sorted(self.work.glob(spec.path))
            except (OSError, ValueError):
                continue
            for path in matches:
                rel = path.relative_to(self.work).as_posix()
                if rel in seen or rel.startswith(".snakemake/") or incomplete(root, rel):
                    continue
                found = self.result(rel)
                if found is not None:
                    seen.add(rel)
                    yield found

    def _inside(self, path: Path) -> Path | None:
        try:
            resolved = path.resolve()
            root = self.work.resolve()
        except OSError:
            return None
        if not resolved.is_relative_to(root) or not resolved.is_file():
            return None
        return resolved


def incomplete(work: Path, rel: str) -> bool:
    """Whether Snakemake marked the output ``rel`` incomplete (``.snakemake/incomplete``:
    the path urlsafe-base64-encoded, split into parts of at most the name limit)."""
    b64 = urlsafe_b64encode(rel.encode()).decode()
    limit = 254
    parts = [b64[i : i + limit] for i in range(0, len(b64), limit)]
    parts = ["@" + p for p in parts[:-1]] + parts[-1:]
    return (work / ".snakemake" / "incomplete").joinpath(*parts).exists()


def make_report(
    workflow: Workflow,
    rd: RunDir,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    timeout: float = REPORT_TIMEOUT,
) -> Path | None:
    """Run ``snakemake --report`` in the run's work directory with its Snakefile and config
    (it rebuilds the DAG and reads ``.snakemake/metadata`` there); its output goes to the run's
    log. Returns the report, or ``None`` (the log says why)."""
    target = rd.root / "report.html"
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    argv = [
        sys.executable, "-m", "snakemake", "--snakefile", str(workflow.snakefile),
        "--directory", str(rd.work), "--configfile", str(rd.config), "--nocolor",
        "--report", str(target),
    ]  # fmt: skip
    with open(rd.log, "ab") as out:
        out.write(b"snakedeck: creating Snakemake's report of the run (--report)\n")
        out.flush()
        proc = subprocess.Popen(
            argv, cwd=rd.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if should_stop() or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                out.write(b"snakedeck: the report was not finished (stopped)\n")
                return None
            time.sleep(0.2)
        if proc.returncode != 0 or not target.is_file():
            out.write(f"snakedeck: the report failed (exit code {proc.returncode})\n".encode())
            return None
    return target
