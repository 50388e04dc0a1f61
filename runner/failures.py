"""Why a job failed, from what Snakemake printed: its ``snakemake.log`` (stdout and stderr).

Snakemake never captures a job's output: a local job inherits Snakemake's stdout and stderr, so
the command's stderr, and for a ``run:`` block the traceback its subprocess prints, reach
``snakemake.log`` and no event. :class:`LogAttributor` reads that log line by line as it grows
and gives each job the text printed while it ran:

* a job **opens** with Snakemake's job block (``[date]`` / ``localrule NAME:`` / indented
  ``jobid: N`` …) and **closes** with ``Finished jobid: N`` or its ``Error in rule NAME:``
  block (which names ``jobid: N``);
* every other line, except Snakemake's own bookkeeping (``Select jobs to execute...``,
  ``N of M steps (x%) done``…), goes to the jobs open at that moment;
* an exception block (``RuleException:`` then ``<Error> in file …, line L:`` and its message)
  goes only to the job it names, when it names one: a shell job by its command (``Command
  '…<shellcmd>…' returned non-zero exit status N``), a ``run:`` job by ``in __rule_<name>``.

**Limits.** When several jobs run at once, their raw output lines interleave in the log with
nothing to tell them apart: each such line goes to every job open then, and the job's failure
says so (``text_shared``). Exception blocks are attributed exactly when they name their job
as above. A job whose output is redirected (``2> {log}``) prints nothing here; its declared
logs are read beside this (see the shipper). Jobs on a cluster (SLURM) print into their own
cluster log, which Snakemake names as the job's log. Text is bounded per job to the last
:data:`MAX_LINES` lines and :data:`MAX_BYTES` bytes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

MAX_LINES: Final = 200
MAX_BYTES: Final = 64 * 1024

DATE_RE: Final = re.compile(r"^\[\w{3} \w{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}\]$")
RULE_HEAD_RE: Final = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (?P<rule>[^\s:]+):$")
ERROR_HEAD_RE: Final = re.compile(r"^\s*Error in rule (?P<rule>[^\s:]+):$")
GROUP_HEAD_RE: Final = re.compile(r"^\s*(?:Error in )?group (?:job )?\S+.*:$")
KEY_RE: Final = re.compile(r"^(?P<indent>\s+)(?P<key>[a-z][a-z_-]*): ?(?P<value>.*)$")
FINISHED_RE: Final = re.compile(r"^\s*Finished jobid: (?P<jobid>\S+) \(Rule: .*\)$")
EXCEPTION_HEAD_RE: Final = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*) in (?:rule \S+ in )?file .*:$")
RUN_RULE_RE: Final = re.compile(r"in __rule_(?P<rule>\w+)\s*$")
BLOCK_KEYS: Final = frozenset(
    {
        "input", "output", "log", "jobid", "reason", "wildcards", "resources", "threads",
        "benchmark", "priority", "message", "shell", "conda-env", "container",
        "external_jobid", "group", "affected files", "local",
    }
)  # fmt: skip
BOOKKEEPING: Final = tuple(
    re.compile(p)
    for p in (
        r"^Select jobs to execute\.\.\.$",
        r"^Execute \d+ jobs\.\.\.$",
        r"^\d+ of \d+ steps \(.*\) done$",
        r"^Exiting because a job execution failed\. Look above for error messages$",
        r"^WorkflowError:$",
        r"^At least one job did not complete successfully\.$",
        r"^Shutting down, this might take some time\.$",
        r"^Trying to restart job \S+\.$",
        r"^Removing output files of failed job .*:$",
        r"^Complete log\(s\): .*$",
        r"^Elapsed time: .*$",
        r"^Will exit after finishing currently running jobs.*$",
        r"^Terminating processes on user request.*$",
        r"^Job \S+ has been submitted with SLURM jobid .*$",
        r"^\s*\(command exited with non-zero exit code\)$",
    )
)


@dataclass
class JobText:
    """What was printed while one attempt of a job ran."""

    jobid: str
    rule: str
    lines: deque[str] = field(default_factory=deque)
    size: int = 0
    truncated: bool = False
    shared: bool = False
    failed: bool = False

    def add(self, line: str, *, shared: bool) -> None:
        self.lines.append(line)
        self.size += len(line) + 1
        self.shared = self.shared or shared
        while len(self.lines) > MAX_LINES or self.size > MAX_BYTES:
            self.size -= len(self.lines.popleft()) + 1
            self.truncated = True

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def exception_message(lines: Iterable[str]) -> str | None:
    """``Class: first line of its message`` of the first exception block in ``lines``."""
    lines = list(lines)
    for i, line in enumerate(lines):
        m = EXCEPTION_HEAD_RE.match(line.strip())
        if m and i + 1 < len(lines):
            return f"{m.group('cls')}: {lines[i + 1].strip()}"[:500]
    return None


class LogAttributor:
    """Feed it ``snakemake.log`` line by line; it keeps the text of each open job and of each
    failed one (``failures[jobid]``: one :class:`JobText` per failed attempt, in order)."""

    def __init__(self, shellcmd_of: Callable[[str], str | None] = lambda _jobid: None) -> None:
        self.shellcmd_of = shellcmd_of
        """The job's (formatted) shell command, to attribute its exception block."""
        self.open: dict[str, JobText] = {}
        self.failures: dict[str, list[JobText]] = {}
        self._block: list[str] | None = None
        """Lines of a Snakemake job or error block being read (after its head)."""
        self._block_kind = ""
        self._block_rule = ""
        self._block_indent: int | None = None
        self._after_date = False
        self._exception: list[str] | None = None

    # -- feeding --------------------------------------------------------------------------------
    def feed(self, lines: Iterable[str]) -> None:
        for raw in lines:
            self._line(raw.rstrip("\r\n"))

    def flush(self) -> None:
        """End whatever block is being read (the log ended)."""
        self._end_block()
        self._end_exception()

    def _line(self, line: str) -> None:
        if self._block is not None:
            if self._continues_block(line):
                self._block.append(line)
                return
            self._end_block()
        stripped = line.strip()
        if DATE_RE.match(stripped):
            self._end_exception()
            self._after_date = True
            return
        after_date, self._after_date = self._after_date, False
        head = RULE_HEAD_RE.match(line) or ERROR_HEAD_RE.match(line)
        if head and (after_date or line.startswith(" ")):
            self._end_exception()
            self._block = []
            self._block_kind = "error" if line.lstrip().startswith("Error") else "job"
            self._block_rule = head.group("rule")
            self._block_indent = None
            return
        finished = FINISHED_RE.match(line)
        if finished:
            self._end_exception()
            self.open.pop(finished.group("jobid"), None)
            return
        if any(p.match(line) for p in BOOKKEEPING):
            self._end_exception()
            return
        if stripped == "RuleException:" or (
            self._exception is None and EXCEPTION_HEAD_RE.match(stripped)
        ):
            self._end_exception()
            self._exception = [line]
            return
        if self._exception is not None:
            self._exception.append(line)
            return
        self._to_open(line)

    def _continues_block(self, line: str) -> bool:
        m = KEY_RE.match(line)
        if m and m.group("key") in BLOCK_KEYS:
            indent = len(m.group("indent"))
            if self._block_indent is None:
                self._block_indent = indent
            if indent == self._block_indent:
                return True
        # A value spanning lines (the shell command of an error block) is indented deeper.
        deeper = self._block_indent is not None and line.startswith(" " * (self._block_indent + 1))
        return bool(self._block) and deeper

    def _end_block(self) -> None:
        block, self._block = self._block, None
        if block is None:
            return
        jobid = None
        for line in block:
            m = KEY_RE.match(line)
            if m and m.group("key") == "jobid" and len(m.group("indent")) == self._block_indent:
                jobid = m.group("value").strip()
        if jobid is None:
            return
        if self._block_kind == "job":
            self.open[jobid] = JobText(jobid, self._block_rule)
            return
        text = self.open.pop(jobid, None) or JobText(jobid, self._block_rule)
        text.failed = True
        self.failures.setdefault(jobid, []).append(text)

    def _end_exception(self) -> None:
        lines, self._exception = self._exception, None
        if not lines:
            return
        owners = self._owners(lines)
        for line in lines:
            self._to_open(line, only=owners)

    def _owners(self, lines: list[str]) -> set[str] | None:
        """The open jobs an exception block names (``None``: it names none of them)."""
        text = " ".join(" ".join(lines).split())
        found: set[str] = set()
        for line in lines:
            m = RUN_RULE_RE.search(line)
            if m:
                found |= {j for j, t in self.open.items() if t.rule == m.group("rule")}
        for jobid in self.open:
            cmd = self.shellcmd_of(jobid)
            if cmd and cmd.strip() and " ".join(cmd.split()) in text:
                found.add(jobid)
        return found or None

    def _to_open(self, line: str, only: set[str] | None = None) -> None:
        targets = [t for j, t in self.open.items() if only is None or j in only]
        shared = len(targets) > 1 or (only is None and len(self.open) > 1)
        for target in targets:
            target.add(line, shared=shared)

    # -- asking ---------------------------------------------------------------------------------
    def failure(self, jobid: str, index: int) -> JobText | None:
        """The text of the ``index``-th (0-based) failed attempt of ``jobid``, once its error
        block has been read."""
        found = self.failures.get(str(jobid)) or []
        return found[index] if index < len(found) else None

    def running_text(self, jobid: str) -> JobText | None:
        """What an open job printed so far (for a job whose error block never came)."""
        return self.open.get(str(jobid))
