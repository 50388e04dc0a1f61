"""Realistic event streams of a synthetic Snakemake workflow, for tests and benchmarks.

The shapes are the ones the Snakemake 9 logger plugin emits through
:func:`snakedeck.envelope.make` (``job_started`` names a batch of jobs, then one ``job_info`` and
``shellcmd`` per job, ``job_finished`` with ``job_id``, ``progress`` after each finished job…)
plus the runner's ``run_state`` events. The workflow: per sample ``fetch`` → ``align``, then one
``merge`` and the ``all`` target, so ``2 * samples + 2`` jobs.

    run = synthetic_run("r1", samples=4)                 # COMPLETE
    run = synthetic_run("r2", samples=4, fail_job=3)     # job 3 fails → EXECUTOR_ERROR
    run = synthetic_run("r3", samples=4, cancel_after=3) # CANCELED after 3 finished jobs
    run = synthetic_run("big", samples=samples_for(10_000))
    store.persist(run.events); run.expected_state_of("5")
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snakedeck import envelope
from snakedeck.envelope import Envelope

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC).timestamp()


@dataclass
class SyntheticJob:
    jobid: int
    rule: str
    wildcards: dict[str, str]
    input: list[str]
    output: list[str]
    log: list[str]
    threads: int
    shellcmd: str
    expected_state: str = "not_run"
    """What the store should say once every event of the run is persisted (``not_run``: the
    run ended before it started, so it has no job document)."""


@dataclass
class SyntheticRun:
    run_id: str
    events: list[Envelope]
    jobs: dict[str, SyntheticJob]
    final_state: str
    rule_totals: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.jobs)

    def expected_state_of(self, jobid: str | int) -> str:
        return self.jobs[str(jobid)].expected_state

    def jobs_in(self, state: str) -> list[SyntheticJob]:
        """Jobs expected in ``state`` that have a job document (never-started jobs have none)."""
        return [j for j in self.jobs.values() if j.expected_state == state]

    def expected_rule_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            by_state = counts.setdefault(
                job.rule,
                {
                    "pending": 0,
                    "running": 0,
                    "done": 0,
                    "failed": 0,
                    "cancelled": 0,
                    "not_run": 0,
                    "total": 0,
                },
            )
            by_state[job.expected_state] += 1
            by_state["total"] += 1
        return counts


def samples_for(n_jobs: int) -> int:
    """How many samples make a run of about ``n_jobs`` jobs (exactly, for even ``n_jobs``)."""
    return max(1, (n_jobs - 2) // 2)


def _plan(samples: int) -> list[SyntheticJob]:
    """Jobs in the order Snakemake would schedule them: ids as the DAG numbers them."""
    jobs: list[SyntheticJob] = []
    names = [f"S{i:05d}" for i in range(1, samples + 1)]
    next_id = 2
    for name in names:
        fq = f"raw/{name}.fastq.gz"
        jobs.append(
            SyntheticJob(
                next_id,
                "fetch",
                {"sample": name},
                [],
                [fq],
                [f"logs/fetch/{name}.log"],
                1,
                f"curl -sSfo {fq} https://data.example.org/{name}.fastq.gz",
            )
        )
        next_id += 1
    for name in names:
        bam = f"aligned/{name}.bam"
        jobs.append(
            SyntheticJob(
                next_id,
                "align",
                {"sample": name},
                [f"raw/{name}.fastq.gz", "ref/genome.fa"],
                [bam],
                [f"logs/align/{name}.log"],
                4,
                f"bwa mem -t 4 ref/genome.fa raw/{name}.fastq.gz | samtools sort -o {bam}",
            )
        )
        next_id += 1
    bams = [f"aligned/{n}.bam" for n in names]
    jobs.append(
        SyntheticJob(
            1,
            "merge",
            {},
            bams,
            ["results/merged.bam"],
            ["logs/merge.log"],
            2,
            "samtools merge -@ 2 results/merged.bam " + " ".join(bams[:3]) + " ...",
        )
    )
    jobs.append(SyntheticJob(0, "all", {}, ["results/merged.bam"], [], [], 1, ""))
    return jobs


def synthetic_run(
    run_id: str,
    *,
    samples: int = 3,
    parallel: int = 4,
    fail_job: int | None = None,
    cancel_after: int | None = None,
    seed: int = 0,
    start: float = START,
) -> SyntheticRun:
    """Build the whole event stream of one run, ``seq`` numbered ``1..N``.

    ``fail_job``: that job id ends with ``job_error``; the jobs running beside it finish, the
    rest never start, the run ends ``EXECUTOR_ERROR``. ``cancel_after``: the run is cancelled
    once that many jobs have finished; jobs running then end ``cancelled``.
    """
    rng = random.Random(seed)
    plan = _plan(samples)
    by_id = {str(j.jobid): j for j in plan}
    stats: dict[str, int] = {}
    for job in plan:
        stats[job.rule] = stats.get(job.rule, 0) + 1
    events: list[Envelope] = []
    clock = [start]

    def emit(
        type_: str, data: dict, *, msg: str = "", level: str = "info", advance: float = 0.05
    ) -> None:
        clock[0] += advance
        source = "runner" if type_ == "run_state" else "snakemake"
        events.append(
            envelope.make(
                run_id,
                type_,
                data=data,
                msg=msg,
                level=level,
                source=source,
                ts=envelope.iso_from_epoch(clock[0]),
                seq=len(events) + 1,
            )
        )

    def run_state(state: str, **extra: object) -> None:
        event = envelope.run_state(run_id, state, **extra)  # type: ignore[arg-type]
        emit("run_state", event["data"], msg=event["msg"], level=event["level"])

    run_state("INITIALIZING")
    run_state("RUNNING")
    emit(
        "workflow_started",
        {
            "workflow_id": f"00000000-0000-4000-8000-{seed:012d}",
            "snakefile": "/srv/workflows/align/Snakefile",
        },
    )
    stats_msg = "Job stats:\n" + "\n".join(f"{r} {n}" for r, n in stats.items())
    emit("run_info", {"stats": {**stats, "total": len(plan)}}, msg=stats_msg)

    done = 0
    failed = False
    cancelled = False
    # Waves respect the DAG: every fetch, then every align, then merge, then all.
    waves = [[j for j in plan if j.rule == rule] for rule in ("fetch", "align", "merge", "all")]
    for wave in waves:
        for start_idx in range(0, len(wave), parallel):
            batch = wave[start_idx : start_idx + parallel]
            emit(
                "job_started",
                {"jobs": [j.jobid for j in batch]},
                msg=f"Execute {len(batch)} jobs...",
            )
            for job in batch:
                job.expected_state = "running"
                emit("job_info", _job_info(job), msg=f" Rule: {job.rule}, Jobid: {job.jobid}")
                if job.shellcmd:
                    emit("shellcmd", {"shellcmd": job.shellcmd, "indent": False}, msg=job.shellcmd)
            for job in batch:
                if cancel_after is not None and done >= cancel_after:
                    cancelled = True
                    break
                duration = round(rng.uniform(0.5, 30.0), 3)
                if fail_job is not None and job.jobid == fail_job:
                    job.expected_state = "failed"
                    failed = True
                    emit(
                        "job_error",
                        _job_error(job),
                        msg=f"Error in rule {job.rule}, jobid: {job.jobid}",
                        level="error",
                        advance=duration,
                    )
                    continue
                job.expected_state = "done"
                done += 1
                emit(
                    "job_finished",
                    {"job_id": job.jobid},
                    msg=f"Finished jobid: {job.jobid} (Rule: {job.rule})",
                    advance=duration,
                )
                emit("progress", {"done": done, "total": len(plan)}, msg="")
            if failed or cancelled:
                break
        if failed or cancelled:
            break

    if cancelled:
        run_state("CANCELING", reason="cancel requested by user")
        run_state("CANCELED", signal=15, reason="cancelled by user")
        final = "CANCELED"
        for job in plan:
            if job.expected_state == "running":
                job.expected_state = "cancelled"
    elif failed:
        emit(
            "error",
            {"exception": "WorkflowError", "location": None, "rule": None, "traceback": None},
            msg="Exiting because a job execution failed. Look below for error messages",
            level="error",
        )
        run_state("EXECUTOR_ERROR", exit_code=1, reason="snakemake exited with code 1")
        final = "EXECUTOR_ERROR"
    else:
        run_state("COMPLETE", exit_code=0)
        final = "COMPLETE"
    return SyntheticRun(run_id, events, by_id, final, stats)


def _job_info(job: SyntheticJob) -> dict:
    return {
        "jobid": job.jobid,
        "rule_msg": None,
        "rule_name": job.rule,
        "local": job.rule == "all",
        "input": job.input,
        "output": job.output,
        "log": job.log,
        "benchmark": None,
        "wildcards": job.wildcards,
        "reason": "Missing output files: " + ", ".join(job.output or ["<target>"]),
        "resources": {"_cores": job.threads, "_nodes": 1, "tmpdir": "/tmp", "mem_mb": 1000},
        "priority": 0,
        "threads": job.threads,
        "indent": False,
        "is_checkpoint": False,
        "printshellcmd": True,
        "is_handover": False,
        "shellcmd": job.shellcmd,
    }


def _job_error(job: SyntheticJob) -> dict:
    return {
        "rule_name": job.rule,
        "rule_msg": None,
        "jobid": job.jobid,
        "input": job.input,
        "output": job.output,
        "log": job.log,
        "conda_env": None,
        "container_img": None,
        "aux": {},
        "indent": False,
        "shellcmd": job.shellcmd,
    }


def register(store: Any, *runs: SyntheticRun | str) -> None:
    """Create bare run documents, as a submit does before any event of its run arrives (the
    store refuses events of runs that do not exist)."""
    for run in runs:
        run_id = run if isinstance(run, str) else run.run_id
        if store.get_run(run_id) is None:
            store.create_run({"run_id": run_id})


def persist(store: Any, events: list[Envelope], **kwargs: Any) -> Any:
    """``store.persist`` of events whose runs are registered first."""
    register(store, *sorted({e["run_id"] for e in events}))
    return store.persist(events, **kwargs)
