"""A whole deployment on this machine, every part a real process that a test can kill.

Runners, consumers and gateways are started as ``python -m cli runner|consumer|gateway`` (the
production commands), each with its own ``DATA_DIR`` unless told otherwise, against one broker
and one store. The test keeps a store handle of its own to read what was recorded, and
:meth:`Deployment.verify` checks a run the way the fault issue asks: every job recorded with its
true final state, events gap-free, exactly one terminal state, executed once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from snakedeck.states import TERMINAL_RUN_STATES
from snakedeck.store import JobFilter, Store, StoreError, open_store
from tests.support.live_clients import GatewayProcess, SocketIOFeed, WebSocketFeed, settings_env
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


class Proc:
    """One snakedeck process (``python -m cli ROLE``) with its output in a log file."""

    def __init__(
        self, role: str, settings: Settings, log: Path, prefix: Sequence[str] = ()
    ) -> None:
        self.role = role
        self.prefix = tuple(prefix)  # e.g. ``ip netns exec NS``: the process on another host
        self.settings = settings
        self.log_path = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
        env.update(settings_env(self.settings), PYTHONUNBUFFERED="1")
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "cli", self.role],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process only (not its Snakemake children: they are in sessions of their
        own, as they are in production)."""
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(60)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        if self.alive:
            self.kill(signal.SIGKILL)

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""


@dataclass
class Figures:
    """What :meth:`Deployment.verify` found, printed by the fault suite's table."""

    scenario: str
    run_id: str
    state: str
    jobs: int
    events: int
    gaps: int
    terminal_states: int
    executions: int
    expected: int = 0
    """Events in the run's spool: what the runner wrote, so what the store must hold."""
    feed_events: dict[str, int] = field(default_factory=dict)
    feed_duplicates: int = 0
    recovery_s: float | None = None
    notes: str = ""


class Watchers:
    """The live clients of one run: ``feeds`` for :meth:`Deployment.verify`."""

    def __init__(self, sio: SocketIOFeed, ws: WebSocketFeed) -> None:
        self.sio = sio
        self.ws = ws

    @property
    def feeds(self) -> tuple[SocketIOFeed, WebSocketFeed]:
        return self.sio, self.ws

    def close(self) -> None:
        self.sio.close()
        self.ws.close()

    def __enter__(self) -> Watchers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Deployment:
    def __init__(self, tmp: Path, base: Settings) -> None:
        self.tmp = tmp
        self.base = base
        self.procs: list[Proc] = []
        self.gateways: list[GatewayProcess] = []
        self.store: Store = open_store(base.with_(data_dir=tmp / "observer"))

    def settings(self, name: str, **overrides: Any) -> Settings:
        data_dir = overrides.pop("data_dir", None) or self.tmp / name
        return self.base.with_(data_dir=data_dir, **overrides)

    def start(self, role: str, name: str, prefix: Sequence[str] = (), **overrides: Any) -> Proc:
        settings = self.settings(name, **overrides)
        proc = Proc(role, settings, self.tmp / f"{name}.log", prefix).start()
        self.procs.append(proc)
        return proc

    def runner(self, name: str = "runner", **overrides: Any) -> Proc:
        return self.start("runner", name, **overrides)

    def consumer(self, name: str = "consumer", **overrides: Any) -> Proc:
        return self.start("consumer", name, **overrides)

    def gateway(
        self, name: str = "gateway", prefix: Sequence[str] = (), **overrides: Any
    ) -> GatewayProcess:
        gateway = GatewayProcess(self.settings(name, **overrides), prefix=prefix).start()
        self.gateways.append(gateway)
        return gateway

    @property
    def url(self) -> str:
        return self.gateways[0].url

    def up(self, *, runners: int = 1) -> None:
        """The usual deployment: a consumer, ``runners`` runners and a gateway, all ready."""
        self.consumer()
        for i in range(runners):
            self.runner(f"runner-{i}" if runners > 1 else "runner")
        self.gateway()
        self.wait_runners(runners)

    def watch(self, run_id: str) -> Watchers:
        """A Socket.IO and a plain-WebSocket client following the run from its first event,
        as real clients do (the Socket.IO one reconnects and resubscribes after a drop)."""
        sio = SocketIOFeed(self.url, reconnect=True).connect()
        sio.subscribe(run_id=run_id, after_seq=0)
        return Watchers(sio, WebSocketFeed(self.url, f"/ws/runs/{run_id}?after_seq=0"))

    def spooled(self, run_id: str) -> int:
        """How many events the run's spool holds now (on whichever runner's disk it is)."""
        counts = [
            sum(1 for ln in spool.read_bytes().splitlines() if ln.strip())
            for spool in self.tmp.glob(f"*/runs/{run_id}/events.jsonl")
        ]  # two runners on separate disks: the one that ran it wrote the most
        return max(counts, default=0)

    def wait_jobs_done(self, run_id: str, n: int = 20) -> None:
        wait_for(
            lambda: (self.run(run_id).get("progress") or {}).get("done", 0) >= n,
            180,
            f"run {run_id} to have {n} jobs done",
        )

    def caught_up_after(self, run_id: str, timeout: float = 180) -> float:
        """Seconds from now until the store holds every event the run's spool holds now: the
        time to recover once a fault is over."""
        back = time.monotonic()
        held = self.spooled(run_id)
        wait_for(lambda: self.run(run_id).get("last_seq", 0) >= held, timeout, "the backlog")
        return time.monotonic() - back

    def wait_runners(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` runners heartbeat (they are then listening for commands)."""

        def live() -> bool:
            beats = self.store.runner_beats()
            return sum(time.time() - b.seen_at < 10 for b in beats) >= n

        wait_for(live, timeout, f"{n} runner(s) to heartbeat")
        time.sleep(1.0)  # the runs consumer registers right after the first beat

    def submit(self, config: dict[str, Any], *, workflow: str = "demo", url: str = "") -> str:
        resp = requests.post(
            (url or self.url) + "/api/v1/runs",
            json={"workflow": workflow, "config": config},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        """The run as stored now; ``{}`` while the store does not answer (the test's own
        polling must ride out what the deployment under test rides out)."""
        try:
            return self.store.get_run(run_id) or {}
        except StoreError:
            return {}

    def wait_ended(self, run_id: str, timeout: float = 480) -> dict[str, Any]:
        """The run is terminal and its events have stopped coming (cheap polls: the store may
        be the Mongo wire server, slow on big reads)."""
        seen: list[int] = []

        def ended() -> dict[str, Any] | None:
            run = self.run(run_id)
            if run.get("state") not in TERMINAL_RUN_STATES:
                return None
            seen.append(int(run.get("last_seq") or 0))
            if len(seen) < 3 or len(set(seen[-3:])) != 1:
                time.sleep(1.0)
                return None
            return run

        return wait_for(ended, timeout, f"run {run_id} to end with every event persisted")

    def work_dirs(self, run_id: str) -> list[Path]:
        return [p for p in self.tmp.glob(f"*/runs/{run_id}/work") if p.is_dir()]

    def verify(
        self,
        scenario: str,
        run_id: str,
        *,
        expected_state: str,
        expected_jobs: dict[str, str],
        feeds: Iterable[Any] = (),
        recovery_s: float | None = None,
    ) -> Figures:
        """Assert the run's record is complete and true; return its figures.

        ``expected_jobs`` maps each rule to the state all its jobs must end in."""
        run = self.wait_ended(run_id)
        events = self.store.list_events(run_id, after_seq=0, limit=1_000_000)
        seqs = [e["seq"] for e in events]
        gaps = (seqs[-1] - len(set(seqs))) if seqs else 0
        terminal = [
            e
            for e in events
            if e["type"] == "run_state" and e["data"].get("state") in TERMINAL_RUN_STATES
        ]
        executions = sum(e["type"] == "workflow_started" for e in events)
        logs = sum(_executions_logged(w) for w in self.work_dirs(run_id))
        jobs = self.store.list_jobs(run_id, JobFilter(), page_size=1000).items
        figures = Figures(
            scenario,
            run_id,
            str(run.get("state")),
            len(jobs),
            len(events),
            gaps,
            len(terminal),
            max(executions, logs),
            expected=self.spooled(run_id),
            recovery_s=recovery_s,
        )
        for feed in feeds:  # live clients converge within the feed's catch-up time
            wait_for(
                lambda feed=feed: _feed_has(feed, run_id, seqs),
                180,  # a bound on a hung feed only: catch-up under a loaded machine is slow
                f"{type(feed).__name__} to have every event of {run_id}",
            )
            got = feed.seqs(run_id)
            figures.feed_events[type(feed).__name__] = len(got)
            figures.feed_duplicates += len(got) - len(set(got))
            assert sorted(set(got)) == seqs, f"{type(feed).__name__} missed events"
        assert run.get("state") == expected_state, (run.get("state"), run.get("state_reason"))
        assert seqs == list(range(1, len(seqs) + 1)), "events are not gap-free"
        if run.get("declared_by"):  # ended from outside its events (the reaper): none needed
            assert len(terminal) <= 1, f"{len(terminal)} terminal states"
        else:
            assert len(terminal) == 1, f"{len(terminal)} terminal states"
        assert run.get("closed_seq") is not None, "the run never closed"
        assert figures.executions == 1, f"executed {figures.executions} times"
        assert figures.feed_duplicates == 0
        by_rule: dict[str, set[str]] = {}
        for job in jobs:
            by_rule.setdefault(str(job.get("rule")), set()).add(str(job["state"]))
        for rule, state in expected_jobs.items():
            assert by_rule.get(rule) == {state}, (rule, by_rule.get(rule))  # absent: wrong too
        assert not any(s in ("pending", "running") for states in by_rule.values() for s in states)
        planned = (run.get("progress") or {}).get("total", 0)
        counted = sum(
            (run.get("progress") or {}).get(k, 0)
            for k in ("done", "failed", "cancelled", "not_run")
        )
        assert planned == counted, run.get("progress")
        return figures

    def close(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        for proc in self.procs:
            proc.stop()
        with contextlib.suppress(Exception):
            bus = open_bus(self.base)
            bus.delete_topology()
            bus.close()
        with contextlib.suppress(Exception):
            self.store.drop()
        self.store.close()


def rows(figures: Iterable[Figures]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(f) for f in figures]


def _executions_logged(work: Path) -> int:
    """Snakemake's own count of executions in a work dir: one log per invocation, except
    the ``--report`` run that makes the run's HTML report (it executes no job)."""
    count = 0
    for log in (work / ".snakemake" / "log").glob("*.log"):
        head = log.read_text(errors="replace")[:4000]
        count += "Creating report..." not in head
    return count


def _feed_has(feed: Any, run_id: str, seqs: list[int]) -> bool:
    """Whether the live client has every event; one whose connection ended says why."""
    if set(feed.seqs(run_id)) >= set(seqs):
        return True
    ended = getattr(feed, "ended", None)
    assert ended is None, f"{type(feed).__name__} ended before it had every event: {ended}"
    return False
