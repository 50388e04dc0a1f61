"""Cluster jobs behind Snakemake jobs: what the executor plugin and the scheduler tell of them.

Snakemake's SLURM executor logs one line per submission, ``Job 3 has been submitted with SLURM
jobid 17 (log: …)``; the logger plugin turns it into a ``job_cluster`` event, and the runner adds
the partition, node and scheduler state (from ``squeue``/``sacct``) as more ``job_cluster``
events of the same job. Stdlib only: the logger plugin imports it at every Snakemake start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

SUBMITTED_RE: Final = re.compile(
    r"^Job (?P<jobid>\d+) has been submitted with (?P<scheduler>[A-Za-z0-9_-]+) jobid "
    r"(?P<cluster_job_id>[A-Za-z0-9_.:-]{1,64})\b"
)
FIELDS: Final = (
    "cluster_job_id", "scheduler", "partition", "node", "cluster_state", "cluster_reason",
)  # fmt: skip
"""What a ``job_cluster`` event may carry (besides ``jobid``) and a job document keeps."""
MAX_FIELD: Final = 200


def parse_submission(msg: str) -> dict[str, str] | None:
    """``{jobid, cluster_job_id, scheduler}`` of an executor's submission line, else ``None``."""
    match = SUBMITTED_RE.match(msg)
    if match is None:
        return None
    return {
        "jobid": match["jobid"],
        "cluster_job_id": match["cluster_job_id"],
        "scheduler": match["scheduler"].lower(),
    }


def cluster_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """The cluster fields of an event's data that are usable (non-empty short strings)."""
    return {
        k: v[:MAX_FIELD]
        for k in FIELDS
        if isinstance(v := data.get(k), str) and v and v not in ("None", "(null)")
    }
