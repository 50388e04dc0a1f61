"""The fault suite's table of figures, gathered from every test process.

Under pytest-xdist each worker runs some fault tests; each appends its figures as JSON lines to
one file the controlling process names (``SNAKEDECK_FAULT_FIGURES``), and the controller prints
them as one table when the session ends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ENV = "SNAKEDECK_FAULT_FIGURES"


def open_table() -> None:
    """In the controlling process: name the file every worker appends to."""
    if ENV not in os.environ:
        fd, path = tempfile.mkstemp(prefix="snakedeck-fault-figures-", suffix=".jsonl")
        os.close(fd)
        os.environ[ENV] = path


def record(figures: Any) -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(dataclasses.asdict(figures)) + "\n")


def print_table(terminalreporter: Any) -> None:
    path = os.environ.get(ENV)
    if not path or not Path(path).exists():
        return
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    Path(path).unlink()
    if not rows:
        return
    terminalreporter.write_sep("=", "fault suite figures")
    terminalreporter.write_line(
        f"{'scenario':44} {'state':14} {'jobs':>5} {'spooled':>7} {'stored':>7} {'gaps':>4} "
        f"{'term':>4} "
        f"{'runs':>4} {'feed ev.':>15} {'dup':>3} {'recovery':>9}  notes"
    )
    for f in sorted(rows, key=lambda r: r["scenario"]):
        feeds = "/".join(str(n) for n in f["feed_events"].values()) or "-"
        recovery = f"{f['recovery_s']:.1f} s" if f["recovery_s"] is not None else "-"
        terminalreporter.write_line(
            f"{f['scenario'][:44]:44} {f['state']:14} {f['jobs']:>5} {f.get('expected', 0):>7} "
            f"{f['events']:>7} "
            f"{f['gaps']:>4} {f['terminal_states']:>4} {f['executions']:>4} {feeds:>15} "
            f"{f['feed_duplicates']:>3} {recovery:>9}  {f['notes']}"
        )
