"""The hand-run's forwarding process: tail one spool to RabbitMQ until Snakemake is done.

    python -m snakemake_logger_plugin_snakedeck.forwarding SPOOL --drain-timeout SECONDS

The logger plugin starts this beside Snakemake rather than forwarding from a thread inside it:
pika, the confirms and the polling then run on another core and never take Snakemake's
interpreter from the workflow. The broker's URL comes in ``SNAKEDECK_AMQP_URL`` (never on the
command line, where ``ps`` would show its password). Standard input is a pipe from the plugin:
its end of file (Snakemake closed the handler, or died) means "the spool is complete: drain and
exit". Ctrl-C and SIGTERM reach the whole process group; this process ignores the first and
takes the second as that same end, so the events of an interrupted run still get out.

Exit status: 0 when every spooled event was confirmed, 3 when some stay in the spool (for
``snakedeck replay``), 2 when it could not start forwarding at all.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from snakemake_logger_plugin_snakedeck import _say

EXIT_DELIVERED = 0
EXIT_UNSTARTED = 2
EXIT_UNDELIVERED = 3
POLL_INTERVAL = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snakedeck-forwarding")
    parser.add_argument("spool", type=Path)
    parser.add_argument("--drain-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)

    done = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=_wait_for_eof, args=(done,), daemon=True).start()
    try:
        from snakedeck.bus import open_bus
        from snakedeck.forwarder import BUSY_POLL, Forwarder
        from snakedeck.settings import Settings

        bus = open_bus(Settings.from_env())
        forwarder = Forwarder(args.spool, bus, final_drain_timeout=args.drain_timeout)
    except Exception as exc:  # noqa: BLE001 - the spool keeps everything; say why and stop
        _say(f"cannot forward events to RabbitMQ ({exc}); they stay in {args.spool}")
        return EXIT_UNSTARTED
    try:
        forwarder.start_thread(poll_interval=POLL_INTERVAL, busy_poll=BUSY_POLL)
        done.wait()
        delivered = forwarder.stop(timeout=args.drain_timeout + 1.0)
    finally:
        bus.close()
    return EXIT_DELIVERED if delivered else EXIT_UNDELIVERED


def _wait_for_eof(done: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    done.set()


if __name__ == "__main__":
    sys.exit(main())
