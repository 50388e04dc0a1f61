"""The single-host SLURM cluster of ``scripts/slurm-up`` for the tests that submit to it.

``slurm_cluster`` brings the cluster up (as root; the script is idempotent, so a cluster
``.ci/run`` started is only checked) and answers what the tests ask SLURM: which jobs are still
queued, what accounting recorded. In CI (``CI=true``) a cluster that does not come up fails the
run; elsewhere the tests needing it skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import unavailable

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AccountedJob:
    """One job as ``sacct`` recorded it."""

    job_id: str
    state: str
    partition: str
    node: str
    account: str


class SlurmCluster:
    def __init__(self, partition: str, account: str) -> None:
        self.partition = partition
        self.account = account

    def queued(self, job_ids: Iterable[str] | None = None) -> list[str]:
        """Ids of jobs ``squeue`` still shows (pending, running, completing), of ``job_ids``
        only if given."""
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        return [j for j in out if job_ids is None or j in set(job_ids)]

    def accounted(self, job_ids: Iterable[str]) -> dict[str, AccountedJob]:
        """What ``sacct`` recorded for ``job_ids`` (allocations only, not their steps)."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        out = subprocess.run(
            [
                "sacct",
                "-X",
                "-n",
                "-P",
                "-j",
                ",".join(ids),
                "--format=JobID,State,Partition,NodeList,Account",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        jobs: dict[str, AccountedJob] = {}
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) == 5:  # a state like "CANCELLED by 0" is its first word
                state = parts[1].split()[0] if parts[1] else ""
                jobs[parts[0]] = AccountedJob(parts[0], state, *parts[2:])
        return jobs


def cluster_up() -> tuple[bool, str]:
    """Run ``scripts/slurm-up``; (it came up, what it said)."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        return False, "slurm-wlm is not installed"
    if os.geteuid() != 0:
        return False, "scripts/slurm-up needs root"
    try:
        done = subprocess.run(
            [str(REPO / "scripts" / "slurm-up")], capture_output=True, text=True, timeout=180
        )
    except subprocess.TimeoutExpired:
        return False, "scripts/slurm-up timed out"
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-2000:]


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    ok, said = cluster_up()
    if not ok:
        unavailable(f"a SLURM cluster ({said})")
    return SlurmCluster(
        partition=os.environ.get("SLURM_PARTITION", "debug"),
        account=os.environ.get("SLURM_ACCOUNT", "snakedeck"),
    )
