"""``snakedeck logs RUN [--job J] [-f]``, ``snakedeck outputs RUN [-o DIR]`` and ``snakedeck
resume RUN [--follow]``: a run's logs, results and next attempt, from any host (the gateway
serves them from the store).

``outputs -o DIR`` writes each result under ``DIR`` at the path the server lists for it; a
path is written only if it stays inside ``DIR`` (no absolute path, no ``..``), and every file
is checked against its sha256 before it is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from cli.connection import EXIT_OK, EXIT_USAGE, follow, make_client
from snakedeck.states import is_terminal

if TYPE_CHECKING:
    from snakedeck.client import Client

POLL_SECONDS: Final = 1.0
SETTLE_POLLS: Final = 3
"""After the run ended, polls with nothing new before ``-f`` stops (the runner may still be
shipping its last lines)."""


class ArtefactsUsageError(ValueError):
    pass


def add_parsers(sub: Any, client_options: Callable[[argparse.ArgumentParser], Any]) -> None:
    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        client_options(p)
        p.add_argument("run_id")
        return p

    p = command("logs", "print a run's log (Snakemake's output) or a job's logs")
    p.add_argument("--job", metavar="JOBID", help="the logs of this job instead")
    p.add_argument("--attempt", type=int, help="with --job: this attempt (default: the last)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as it grows")
    p.add_argument("--tail", type=int, metavar="BYTES", help="only the last BYTES of it")
    p = command("outputs", "list a run's results, or download them with -o")
    p.add_argument("-o", "--output", type=Path, metavar="DIR", help="download them into DIR")
    p = command("resume", "resume a failed or cancelled run where it stopped")
    p.add_argument("--follow", action="store_true", help="show live progress until the end")


def _client(args: argparse.Namespace) -> Client:
    return make_client(args)


def _run_id(args: argparse.Namespace) -> str:
    if not args.run_id.strip():
        raise ArtefactsUsageError("RUN_ID must not be empty")
    return args.run_id


# -- logs -----------------------------------------------------------------------------------------
def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    run_id = _run_id(args)
    if args.job is None:
        return _follow_stream(client, run_id, None, args)
    if args.attempt is not None and args.attempt < 1:
        raise ArtefactsUsageError("--attempt counts from 1")
    job_log = client.job_log(run_id, args.job, args.attempt)
    if args.json and not args.follow:
        print(json.dumps(job_log, indent=2))
        return EXIT_OK
    job = client.job(run_id, args.job)
    failure = job.get("failure")
    if failure and not args.follow:
        from cli.terminal import describe_job_failure

        print(describe_job_failure(args.job, job.get("rule"), failure, lines=10_000))
    logs = job_log.get("logs") or []
    if not logs:
        print(f"job {args.job} declares no log file" if not failure else "", file=sys.stderr)
        return EXIT_OK
    for entry in logs:
        print(f"==> {entry.get('path')} <==", flush=True)
        if not entry.get("exists"):
            print("(not written yet)")
            continue
        if args.follow:
            _follow_stream(client, run_id, entry["stream"], args)
        else:
            if entry.get("truncated"):
                print(f"(the last {len(entry.get('content') or '')} characters)")
            sys.stdout.write(entry.get("content") or "")
            sys.stdout.flush()
    return EXIT_OK


def _follow_stream(
    client: Client, run_id: str, stream: str | None, args: argparse.Namespace
) -> int:
    """Print a stream from its start (or its last ``--tail`` bytes); with ``-f`` keep going
    from each answer's ``next_offset`` until the run has ended and nothing more comes."""
    piece = client.run_log(run_id, stream=stream, tail=args.tail) if args.tail else None
    offset = 0
    quiet = 0
    while True:
        if piece is None:
            piece = client.run_log(run_id, stream=stream, offset=offset)
        if piece.get("missed"):
            print(f"[{piece['missed']} bytes no longer kept]", file=sys.stderr)
        if args.json:
            if piece.get("text"):
                print(json.dumps({k: piece[k] for k in ("stream", "offset", "text")}), flush=True)
        else:
            sys.stdout.write(piece.get("text") or "")
            sys.stdout.flush()
        grew = int(piece["next_offset"]) > offset or bool(piece.get("text"))
        offset = int(piece["next_offset"])
        more = offset < int(piece.get("size") or 0)
        piece = None
        if more:
            continue
        if not args.follow:
            return EXIT_OK
        quiet = 0 if grew else quiet + 1
        if is_terminal(client.run(run_id).get("state")) and quiet >= SETTLE_POLLS:
            return EXIT_OK
        time.sleep(POLL_SECONDS)


# -- outputs --------------------------------------------------------------------------------------
def safe_target(root: Path, path: str) -> Path:
    """Where a listed result goes under ``root``; refuses a path that would leave it."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or any(p in ("", ".", "..") for p in pure.parts):
        raise ArtefactsUsageError(f"the server listed an unsafe result path {path!r}; skipped")
    target = root.joinpath(*pure.parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise ArtefactsUsageError(f"result {path!r} would be written outside {root}; skipped")
    return target


def cmd_outputs(args: argparse.Namespace) -> int:
    client = _client(args)
    run_id = _run_id(args)
    listing = client.outputs(run_id)
    items = list(listing.get("outputs") or [])
    if listing.get("report"):
        items.append(listing["report"])
    if args.output is None:
        if args.json:
            print(json.dumps(listing, indent=2))
            return EXIT_OK
        _print_outputs(items, run_id)
        return EXIT_OK
    root: Path = args.output
    root.mkdir(parents=True, exist_ok=True)
    failed = 0
    for item in items:
        try:
            target = safe_target(root, str(item["path"]))
        except ArtefactsUsageError as exc:
            print(f"snakedeck outputs: {exc}", file=sys.stderr)
            failed += 1
            continue
        if _download(client, run_id, item, target):
            if not args.json:
                print(f"{item['path']}  {item['size']} bytes")
        else:
            failed += 1
    if args.json:
        print(json.dumps({"downloaded": len(items) - failed, "failed": failed}))
    return EXIT_USAGE if failed else EXIT_OK


def _download(client: Client, run_id: str, item: dict[str, Any], target: Path) -> bool:
    """Download into a temporary file beside ``target``, keep it only if its sha256 is the
    one listed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _Hashing(raw, digest)
            client.download_output(run_id, str(item["path"]), sink)  # type: ignore[arg-type]
        if digest.hexdigest() != item.get("sha256"):
            print(f"snakedeck outputs: {item['path']} arrived damaged (sha256 differs); "
                  "not kept", file=sys.stderr)  # fmt: skip
            return False
        os.replace(tmp, target)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class _Hashing:
    def __init__(self, sink: Any, digest: Any) -> None:
        self.sink, self.digest = sink, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.sink.write(data)


def _print_outputs(items: list[dict[str, Any]], run_id: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    console = Console()
    if not items:
        console.print(f"run {run_id} has no stored results (yet)")
        return
    table = Table(
        Column("path", overflow="fold"), "kind", Column("size", justify="right"), "sha256",
        box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for item in items:
        kind = "report" if item.get("report") else str(item.get("kind") or "")
        table.add_row(
            Text(str(item["path"])), kind, str(item.get("size")), str(item.get("sha256"))[:12]
        )
    console.print(table)
    console.print(f"download them: snakedeck outputs {run_id} -o DIR")


# -- resume ---------------------------------------------------------------------------------------
def cmd_resume(args: argparse.Namespace) -> int:
    client = _client(args)
    answer = client.resume(_run_id(args))
    if args.follow:
        if not args.json:
            print(
                f"run {answer['run_id']} resumed (attempt {answer['attempt']} on runner "
                f"{answer['runner']})",
                file=sys.stderr,
            )
        return follow(args, client, answer["run_id"])
    print(json.dumps(answer) if args.json else f"{answer['run_id']} attempt {answer['attempt']}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "logs": cmd_logs,
    "outputs": cmd_outputs,
    "resume": cmd_resume,
}
