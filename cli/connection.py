"""What every client command shares: its exit codes, the client it talks to the gateway with,
and following a run to its end."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from snakedeck.settings import Settings

if TYPE_CHECKING:
    from snakedeck.client import Client

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def make_client(args: argparse.Namespace) -> Client:
    """The gateway at ``--url`` (or ``SNAKEDECK_URL``, or this machine's settings), with
    ``--token`` (or ``SNAKEDECK_TOKEN``, or the first configured token)."""
    from snakedeck.client import Client

    settings = Settings.from_env()
    url = args.url or os.environ.get("SNAKEDECK_URL") or f"http://{settings.host}:{settings.port}"
    token = args.token or os.environ.get("SNAKEDECK_TOKEN")
    if not token and settings.api_tokens:
        token = settings.api_tokens[0]
    return Client(url, token)


def follow(args: argparse.Namespace, client: Client, run_id: str) -> int:
    """Show the run live until it ends; exit 0 only if it ended COMPLETE."""
    from cli.terminal import follow_run

    final = follow_run(client, run_id, as_json=args.json, show_log=getattr(args, "log", False))
    return EXIT_OK if final.get("state") == "COMPLETE" else EXIT_RUN_FAILED
