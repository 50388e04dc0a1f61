"""How long an active run still needs: an estimate, always with the basis it was made on.

Per rule, the mean wall time of a job is pooled from the finished jobs of this run and of the
last :data:`HISTORY_RUNS` COMPLETE runs of the same workflow (their ``rule_durations``, fixed
on each run as it ended). The work left is, per rule, the jobs not started times that mean,
plus for each running job what its mean says is left of it. It is done
``parallelism`` jobs at a time (Snakemake's cores, never more than the jobs left), and never
faster than the longest single job left. Rules without any finished job anywhere take the
mean over all rules that have one; with no finished job at all there is no estimate.

Dependencies are not modelled (a merge waits for everything before it), so a run with a long
serial tail ends later than estimated: the basis says what was assumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from snakedeck.documents import Eta, RuleDurations
from snakedeck.envelope import iso_from_epoch

HISTORY_RUNS: Final = 5


def _epoch(ts: object) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pooled(sources: Iterable[Mapping[str, RuleDurations]]) -> dict[str, tuple[int, float]]:
    """Per rule: (jobs, summed seconds) over several runs' rule durations."""
    out: dict[str, tuple[int, float]] = {}
    for durations in sources:
        for rule, d in (durations or {}).items():
            n, total = out.get(rule, (0, 0.0))
            count = int(d.get("count") or 0)
            if count > 0:
                out[rule] = (n + count, total + float(d.get("seconds") or 0.0))
    return out


def estimate(
    run: Mapping[str, Any],
    *,
    current: Mapping[str, RuleDurations],
    history: Sequence[Mapping[str, RuleDurations]],
    running: Sequence[Mapping[str, Any]],
    now: float,
    cores: int | None = None,
) -> Eta | None:
    """The estimate for ``run`` (its ``rule_counts``), or ``None`` when nothing is known."""
    counts: Mapping[str, Mapping[str, int]] = run.get("rule_counts") or {}
    pool = pooled([current, *history])
    means = {rule: total / n for rule, (n, total) in pool.items() if n}
    if not means:
        return None
    overall = sum(total for _, total in pool.values()) / sum(n for n, _ in pool.values())
    work = 0.0
    longest = 0.0
    jobs_left = 0
    guessed: set[str] = set()

    def mean_of(rule: str) -> float:
        if rule in means:
            return means[rule]
        guessed.add(rule)
        return overall

    for rule, by_state in counts.items():
        pending = int(by_state.get("pending") or 0)
        if pending:
            mean = mean_of(rule)
            work += pending * mean
            longest = max(longest, mean)
            jobs_left += pending
    for job in running:
        rule = str(job.get("rule") or "")
        mean = mean_of(rule) if rule else overall
        started = _epoch(job.get("started_at"))
        left = max(0.0, mean - (now - started)) if started is not None else mean
        work += left
        longest = max(longest, left)
        jobs_left += 1
    if jobs_left == 0:
        return None
    parallelism = max(1, min(int(cores or run.get("cores") or 1), jobs_left))
    seconds = max(work / parallelism, longest)
    done_here = sum(int(d.get("count") or 0) for d in current.values())
    basis = (
        f"mean job time per rule from {done_here} finished job(s) of this run"
        f" and {len(history)} earlier COMPLETE run(s) of {run.get('workflow') or 'its workflow'};"
        f" {jobs_left} job(s) left, {parallelism} at a time"
    )
    if guessed:
        basis += f"; no timing yet for {', '.join(sorted(guessed))} (the mean of all rules used)"
    return {
        "seconds_remaining": round(seconds, 1),
        "estimated_end": iso_from_epoch(now + seconds),
        "basis": basis,
    }
