"""``snakedeck replay SPOOL``: deliver what a hand-run Snakemake could not, with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from snakedeck.backoff import Backoff
from snakedeck.bus import open_bus
from snakedeck.bus.base import BusError
from snakedeck.forwarder import Forwarder
from snakedeck.settings import Settings


def replay(
    spool_path: Path, settings: Settings, *, progress: bool = True, timeout: float = 60.0
) -> int:
    """Forward what the spool holds beyond its checkpoint.

    Returns 0 when every event is confirmed, 1 when the broker could not take them within
    ``timeout`` seconds of trying (the checkpoint keeps what did get through), 2 on bad input.
    """
    console = Console(stderr=True)
    spool_path = Path(spool_path)
    if not spool_path.is_file():
        console.print(f"[red]spool {spool_path} does not exist[/red]")
        return 2
    if not settings.amqp_url:
        console.print(
            "[red]SNAKEDECK_AMQP_URL is not set: replay forwards a spool to RabbitMQ, "
            "so it needs the broker's URL[/red]"
        )
        return 2
    bus = open_bus(settings)
    fwd: Forwarder | None = None
    try:
        fwd = Forwarder(spool_path, bus)
        start_seq = fwd.confirmed_seq
        total = spool_path.stat().st_size
        if fwd.offset >= total:
            console.print(f"{spool_path}: nothing to replay (all {start_seq} events confirmed)")
            return 0
        columns = (
            TextColumn("replaying"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[seq]} events"),
        )
        with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
            task = bar.add_task("replay", total=total, completed=fwd.offset, seq=start_seq)
            deadline = time.monotonic() + timeout
            backoff = Backoff()
            while True:
                try:
                    n = fwd.forward_once()
                except BusError as exc:
                    if time.monotonic() >= deadline:
                        console.print(
                            f"[red]could not forward {spool_path}: {exc}[/red]\n"
                            f"{fwd.confirmed_seq - start_seq} events delivered; the rest stay in "
                            "the spool, run `snakedeck replay` again once RabbitMQ is reachable"
                        )
                        return 1
                    backoff.wait(deadline=deadline)
                    continue
                backoff.reset()
                bar.update(task, completed=fwd.offset, seq=fwd.confirmed_seq)
                if n == 0:
                    break
        sent = fwd.confirmed_seq - start_seq
        msg = f"{spool_path}: replayed {sent} events (seq up to {fwd.confirmed_seq})"
        if fwd.bad_lines:
            msg += f"; skipped {fwd.bad_lines} line(s) that are not valid events"
        if fwd.backlog_bytes():
            msg += f"; an incomplete last line ({fwd.backlog_bytes()} bytes) was left"
        console.print(msg)
        return 0
    finally:
        if fwd is not None:
            fwd.save()  # what got through is not sent again by the next replay
        bus.close()
