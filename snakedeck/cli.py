"""The ``snakedeck`` command: server processes and a client of the gateway.

Exit codes: 0 success (for ``--follow``/``watch``: the run ended COMPLETE), 1 the run ended in
another state, 2 bad input or an error answer from the gateway, 3 gateway unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from snakedeck.settings import Settings, SettingsError

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(ValueError):
    pass


# -- argument parsing -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snakedeck",
        description="Submit Snakemake workflow runs and watch every job live.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def server(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--host", help="address to bind (default SNAKEDECK_HOST or 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default SNAKEDECK_PORT or 8000)")
        p.add_argument("--data-dir", type=Path, help="data directory (SNAKEDECK_DATA_DIR)")
        p.add_argument("--workflows-dir", type=Path, help="workflows (SNAKEDECK_WORKFLOWS_DIR)")
        return p

    server("standalone", "gateway, runner and consumer in one process (zero setup)")
    server("gateway", "REST API, live feed and dashboard (gunicorn + gevent)")
    server("runner", "execute submitted runs with Snakemake")
    server("consumer", "persist events from RabbitMQ into the store")

    replay = sub.add_parser("replay", help="forward a spool's undelivered events to RabbitMQ")
    replay.add_argument("spool", type=Path, help="spool file (.jsonl) left by a run")

    def client(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--url", help="gateway URL (SNAKEDECK_URL, default http://HOST:PORT)")
        p.add_argument("--token", help="API token (SNAKEDECK_TOKEN)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    client("workflows", "list registered workflows")
    p = client("submit", "submit a run of a registered workflow")
    p.add_argument("workflow")
    p.add_argument("--config-file", type=Path, help="YAML or JSON file with the run's config")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config value (repeat)"
    )
    p.add_argument(
        "--input", action="append", default=[], metavar="FILE_ID", help="registered input"
    )
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="tag (repeat)")
    p.add_argument("--follow", action="store_true", help="show live progress until the end")

    p = client("runs", "list runs, newest first")
    p.add_argument("--state")
    p.add_argument("--workflow")
    p.add_argument("--tag", metavar="KEY[=VALUE]")
    p.add_argument("-q", "--query", help="free text")
    p.add_argument("--limit", type=int, default=20)

    client("status", "show one run").add_argument("run_id")
    client("watch", "follow a run live until it ends").add_argument("run_id")
    client("cancel", "cancel a run").add_argument("run_id")
    p = client("rerun", "submit a new run with the same workflow, config and inputs")
    p.add_argument("run_id")
    p.add_argument("--follow", action="store_true")
    return parser


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``k=v`` pairs; values parse as YAML scalars (so ``n=3`` is a number) for config."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {pair!r} must look like KEY=VALUE")
        out[key.strip()] = value
    return out


def build_config(config_file: Path | None, sets: Sequence[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text())
        except OSError as exc:
            raise UsageError(f"cannot read --config-file {config_file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"--config-file {config_file} is not valid YAML/JSON: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise UsageError(f"--config-file {config_file} must hold a mapping of config keys")
        config.update(loaded or {})
    for key, raw in parse_pairs(sets, "--set").items():
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        target = config
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise UsageError(f"--set {key}: {part!r} is not a mapping in the config")
        target[leaf] = value
    return config


# -- commands ---------------------------------------------------------------------------------


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
        workflows_dir=getattr(args, "workflows_dir", None),
    )


def make_client(args: argparse.Namespace):
    from snakedeck.client import Client

    settings = Settings.from_env()
    url = args.url or os.environ.get("SNAKEDECK_URL") or f"http://{settings.host}:{settings.port}"
    token = args.token or os.environ.get("SNAKEDECK_TOKEN")
    if not token and settings.api_tokens:
        token = settings.api_tokens[0]
    return Client(url, token)


def run_server(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from snakedeck import processes

    return processes.main(args.command, settings)


def cmd_replay(args: argparse.Namespace) -> int:
    if not args.spool.is_file():
        raise UsageError(f"spool {args.spool} does not exist")
    from runner.forwarder import replay

    return replay(args.spool, Settings.from_env())


def cmd_workflows(args: argparse.Namespace) -> int:
    workflows = make_client(args).workflows()
    if args.json:
        print(json.dumps(workflows, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "version", "description")
    for wf in workflows:
        table.add_row(wf["name"], str(wf.get("version", "")), wf.get("description", ""))
    Console().print(table)
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    client = make_client(args)
    config = build_config(args.config_file, args.set)
    tags = {k: str(v) for k, v in parse_pairs(args.tag, "--tag").items()}
    created = client.submit(args.workflow, config, inputs=args.input or None, tags=tags)
    return report_created(args, client, created)


def cmd_rerun(args: argparse.Namespace) -> int:
    client = make_client(args)
    return report_created(args, client, client.rerun(args.run_id))


def report_created(args: argparse.Namespace, client, created: dict[str, Any]) -> int:
    if args.follow:
        if not args.json:
            print(f"run {created['run_id']} submitted", file=sys.stderr)
        return follow(args, client, created["run_id"])
    if args.json:
        print(json.dumps(created))
    else:
        print(created["run_id"])
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    client = make_client(args)
    params = {"state": args.state, "workflow": args.workflow, "tag": args.tag, "q": args.query}
    runs = []
    for run in client.iter_runs(**params, page_size=min(args.limit, 500)):
        runs.append(run)
        if len(runs) >= args.limit:
            break
    if args.json:
        print(json.dumps(runs, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "workflow", "state", "progress", "submitted", "tags")
    for run in runs:
        table.add_row(
            run["run_id"],
            run.get("workflow") or "",
            run.get("state", ""),
            progress_text(run),
            run.get("submitted_at") or "",
            ", ".join(f"{k}={v}" for k, v in (run.get("tags") or {}).items()),
        )
    Console().print(table)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    run = make_client(args).run(args.run_id)
    if args.json:
        print(json.dumps(run, indent=2))
        return EXIT_OK
    from rich.console import Console

    from snakedeck.live_view import rule_table

    console = Console()
    console.print(f"[bold]{run['run_id']}[/] {run.get('workflow') or ''}  {run['state']}")
    console.print(f"progress {progress_text(run)}")
    if run.get("state_reason"):
        console.print(f"reason: {run['state_reason']}")
    console.print(rule_table(run))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    return follow(args, make_client(args), args.run_id)


def cmd_cancel(args: argparse.Namespace) -> int:
    answer = make_client(args).cancel(args.run_id)
    print(json.dumps(answer) if args.json else f"cancel requested for {args.run_id}")
    return EXIT_OK


def follow(args: argparse.Namespace, client, run_id: str) -> int:
    from snakedeck.live_view import follow_run

    final = follow_run(client, run_id, as_json=args.json)
    return EXIT_OK if final.get("state") == "COMPLETE" else EXIT_RUN_FAILED


def progress_text(run: dict[str, Any]) -> str:
    progress = run.get("progress") or {}
    return f"{progress.get('done', 0)}/{progress.get('total', 0)}"


COMMANDS = {
    "standalone": run_server,
    "gateway": run_server,
    "runner": run_server,
    "consumer": run_server,
    "replay": cmd_replay,
    "workflows": cmd_workflows,
    "submit": cmd_submit,
    "runs": cmd_runs,
    "status": cmd_status,
    "watch": cmd_watch,
    "cancel": cmd_cancel,
    "rerun": cmd_rerun,
}


SERVER_COMMANDS = frozenset({"standalone", "gateway", "runner", "consumer"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in SERVER_COMMANDS:
        # No HTTP client import here: gevent must patch ssl before anything imports it.
        try:
            return run_server(args)
        except SettingsError as exc:
            print(f"snakedeck {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return 130
    from snakedeck.client import ClientError, GatewayUnreachable

    try:
        return COMMANDS[args.command](args)
    except (UsageError, SettingsError) as exc:
        print(f"snakedeck {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayUnreachable as exc:
        print(f"snakedeck {args.command}: {exc.detail}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ClientError as exc:
        print(f"snakedeck {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
