"""What every benchmark shares: one way to summarise samples and print a row, a fresh
namespace per run (its RabbitMQ topology deleted afterwards), and the trivial workflow.

Every figure is printed beside a baseline measured in the same run: the machine is shared and
noisy, so only ratios within one run compare.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

AMQP_URL = os.environ.get("SNAKEDECK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

TRIVIAL_SNAKEFILE = """
N = int(config.get("jobs", 200))
rule all:
    input: expand("out/{i}.txt", i=range(N))
rule touch:
    output: "out/{i}.txt"
    shell: "touch {output}"
"""

TRIVIAL_WORKFLOW_YAML = """
name: trivial
version: "1.0.0"
description: N touch-a-file jobs, for the benchmarks.
config_schema:
  type: object
  additionalProperties: false
  properties:
    jobs: {type: integer, minimum: 1, maximum: 100000, default: 200}
"""


def write_trivial_workflow(workflows_dir: Path) -> None:
    """A workflows directory holding the ``trivial`` workflow (what the overhead rows run)."""
    wf = workflows_dir / "trivial"
    wf.mkdir(parents=True, exist_ok=True)
    (wf / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
    (wf / "workflow.yaml").write_text(TRIVIAL_WORKFLOW_YAML)


def new_namespace() -> str:
    return f"sdbench-{uuid.uuid4().hex[:8]}"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def amqp_namespace() -> Iterator[str]:
    """A fresh namespace whose whole topology is deleted afterwards, whatever happens: also
    on SIGTERM (a ``kill``, a CI timeout), which would otherwise skip every ``finally`` and
    leave the bench's consumer processes and a queue of up to 10^6 messages on the broker."""
    from snakedeck.bus.amqp import AmqpBus

    namespace = new_namespace()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield namespace
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        bus = AmqpBus(AMQP_URL, namespace)
        try:
            bus.delete_topology()
        finally:
            bus.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Summary:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, unit: str, digits: int = 2) -> str:
        return (
            f"median {self.median:,.{digits}f} {unit} "
            f"(min-max {self.low:,.{digits}f}-{self.high:,.{digits}f}, n={self.n})"
        )


def row(what: str, value: str, ratio: float | None = None, baseline: str = "", target: str = ""):
    """Print one result line: ``ROW | what | figures | ratio vs baseline | target``."""
    parts = [f"ROW | {what} | {value}"]
    parts.append(f"{ratio:.3f}x {baseline}" if ratio is not None else (baseline or "-"))
    parts.append(target or "-")
    print(" | ".join(parts), flush=True)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return found


def rss_mb(pid: int) -> float:
    """Resident set size in MB (``VmRSS``) of a process and all its descendants (a gateway
    is gunicorn's arbiter plus its worker), 0 when it is gone."""
    total = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and all its descendants (a gateway
    is gunicorn's arbiter plus its worker): the difference over a phase, divided by its wall
    time, says whether the process was the bottleneck (1.0 is one core busy throughout)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
