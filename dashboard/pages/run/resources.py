"""A job's resources: what it asked Snakemake for beside what the runner measured it using."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import dash_mantine_components as dmc

from dashboard.formatting import format_duration, format_size

HIDDEN: Final = frozenset({"tmpdir", "mem_mib", "disk_mib", "mem", "disk"})
"""Snakemake's derived resources (the same amount in other units, the temp dir): not shown."""


def requested_parts(resources: Mapping[str, Any] | None) -> dict[str, str]:
    """The resources a job requested, as a user declares them (``_cores``: threads)."""
    out: dict[str, str] = {}
    for name, value in (resources or {}).items():
        if name in HIDDEN or (name.startswith("_") and name != "_cores"):
            continue
        if name == "_cores":
            out["cores"] = str(value)
        elif name == "mem_mb" and isinstance(value, int | float):
            out["memory"] = format_size(value * 1_000_000)
        elif name == "disk_mb" and isinstance(value, int | float):
            out["disk"] = format_size(value * 1_000_000)
        elif name == "runtime" and isinstance(value, int | float):
            out["runtime"] = format_duration(value * 60)  # Snakemake's runtime is minutes
        else:
            out[name] = str(value)
    return out


def requested_text(resources: Mapping[str, Any] | None) -> str:
    """``cores 2, memory 400.0 MB, runtime 5 min 00 s`` (the job table's column)."""
    return ", ".join(f"{k} {v}" for k, v in requested_parts(resources).items())


def comparison(
    resources: Mapping[str, Any] | None, threads: Any, used: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """``(what, requested, measured)`` rows: CPU, memory, time."""
    asked = requested_parts(resources)
    used = used or {}
    cpu = used.get("cpu_seconds")
    wall = used.get("wall_seconds")
    busy = ""
    if isinstance(cpu, int | float) and isinstance(wall, int | float) and wall > 0:
        busy = f" ({cpu / wall:.1f} cores busy on average)"
    cores = asked.get("cores") or (str(threads) if threads else "—")
    return [
        ("CPU", f"{cores} core(s)", f"{cpu:.1f} CPU s{busy}" if cpu is not None else "—"),
        (
            "Memory",
            asked.get("memory", "—"),
            f"peak RSS {format_size(used['peak_rss_bytes'])}"
            if used.get("peak_rss_bytes") is not None
            else "—",
        ),
        ("Time", asked.get("runtime", "—"), f"wall {format_duration(wall)}" if wall else "—"),
    ]


def table(job: Mapping[str, Any]) -> Any:
    rows = comparison(job.get("resources"), job.get("threads"), job.get("resources_used"))
    used = job.get("resources_used") or {}
    others = {
        k: v
        for k, v in requested_parts(job.get("resources")).items()
        if k not in {"cores", "memory", "runtime"}
    }
    head = dmc.TableThead(
        dmc.TableTr([dmc.TableTh(""), dmc.TableTh("Requested"), dmc.TableTh("Measured")])
    )
    body = dmc.TableTbody(
        [dmc.TableTr([dmc.TableTd(c) for c in row]) for row in rows],
    )
    notes = []
    if others:
        notes.append(", ".join(f"{k} {v}" for k, v in others.items()) + " also requested")
    if used.get("basis"):
        notes.append(f"Measured: {used['basis']}")
    elif not used:
        notes.append("Not measured (yet): the runner records it as the job runs.")
    return dmc.Stack(
        [
            dmc.Table([head, body], withTableBorder=True, fz="sm", id="job-resources"),
            *[dmc.Text(n, size="xs", c="dimmed") for n in notes],
        ],
        gap=4,
    )
