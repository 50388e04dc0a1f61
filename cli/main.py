"""The ``snakedeck`` command: server processes and a client of the gateway.

Exit codes: 0 success (for ``--follow``/``watch``: the run ended COMPLETE), 1 the run ended in
another state, 2 bad input or an error answer from the gateway, 3 gateway unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cli.connection import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, follow, make_client
from snakedeck.settings import Settings, SettingsError


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
        return add_client_options(sub.add_parser(name, help=help_, description=help_))

    client("workflows", "list registered workflows")
    p = client("submit", "submit a run of a registered workflow")
    p.add_argument("workflow")
    p.add_argument(
        "--config-file",
        metavar="FILE_ID_OR_PATH",
        help="a registered config file, or a local YAML/JSON file (uploaded first); --set wins",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config value (repeat)"
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FILE_ID_OR_PATH",
        help="a declared input: a registered file id or a local file (uploaded first); repeat",
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
    p = client("watch", "follow a run live until it ends")
    p.add_argument("run_id")
    p.add_argument("--log", action="store_true", help="also print Snakemake's log as it grows")
    client("cancel", "cancel a run").add_argument("run_id")
    p = client("rerun", "submit a new run with the same workflow, config and inputs")
    p.add_argument("run_id")
    p.add_argument("--follow", action="store_true")

    help_ = "messages no part of snakedeck could use: list, replay or purge them"
    dead = sub.add_parser("dead-letters", help=help_, description=help_)
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")

    def dead_letters(name: str, help_: str) -> argparse.ArgumentParser:
        return add_client_options(actions.add_parser(name, help=help_, description=help_))

    p = dead_letters("list", "show dead letters, oldest first, with the reason each was filed")
    p.add_argument("--limit", type=positive_int, default=100, help="at most N (default 100)")
    p = dead_letters("replay", "send dead letters back where they came from")
    p.add_argument("--limit", type=positive_int, help="at most N, oldest first (default: all)")
    p = dead_letters("purge", "delete every dead letter for good")
    p.add_argument("--yes", action="store_true", help="confirm: purged letters cannot be replayed")

    from cli import admin, artefacts, files

    files.add_parsers(sub, add_client_options)
    admin.add_parsers(sub, add_client_options)
    artefacts.add_parsers(sub, add_client_options)
    return parser


def add_client_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--url", help="gateway URL (SNAKEDECK_URL, default http://HOST:PORT)")
    p.add_argument("--token", help="API token (SNAKEDECK_TOKEN)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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


def run_id_arg(args: argparse.Namespace) -> str:
    """A run id names one run: an empty one would name the runs list instead."""
    if not args.run_id.strip():
        raise UsageError("RUN_ID must not be empty")
    return args.run_id


def run_server(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from cli import processes

    return processes.main(args.command, settings)


def cmd_replay(args: argparse.Namespace) -> int:
    if not args.spool.is_file():
        raise UsageError(f"spool {args.spool} does not exist")
    from cli.replay import replay

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
    from cli import files

    client = make_client(args)
    config = build_config(None, args.set)
    tags = {k: str(v) for k, v in parse_pairs(args.tag, "--tag").items()}
    try:
        inputs, config_file = files.submission_files(
            client, args.input, args.config_file, quiet=args.json
        )
    except files.FilesUsageError as exc:
        raise UsageError(str(exc)) from None
    created = client.submit(
        args.workflow, config, inputs=inputs, config_file=config_file, tags=tags
    )
    return report_created(args, client, created)


def cmd_rerun(args: argparse.Namespace) -> int:
    client = make_client(args)
    return report_created(args, client, client.rerun(run_id_arg(args)))


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

    from cli.terminal import print_runs

    print_runs(Console(), runs)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    client = make_client(args)
    run = client.run(run_id_arg(args))
    if args.json:
        print(json.dumps(run, indent=2))
        return EXIT_OK
    from rich.console import Console

    from cli.terminal import print_status

    print_status(Console(), client, run)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    return follow(args, make_client(args), run_id_arg(args))


def cmd_cancel(args: argparse.Namespace) -> int:
    answer = make_client(args).cancel(run_id_arg(args))
    print(json.dumps(answer) if args.json else f"cancel requested for {args.run_id}")
    return EXIT_OK


def letters(count: int) -> str:
    return f"{count} dead letter" + ("" if count == 1 else "s")


def cmd_dead_letters(args: argparse.Namespace) -> int:
    if args.action == "purge" and not args.yes:
        raise UsageError(
            "purge deletes every dead letter for good (they cannot be replayed afterwards); "
            "pass --yes to confirm"
        )
    client = make_client(args)
    if args.action == "replay":
        replayed = client.replay_dead_letters(args.limit)
        print(json.dumps({"replayed": replayed}) if args.json else f"replayed {letters(replayed)}")
        return EXIT_OK
    if args.action == "purge":
        purged = client.purge_dead_letters()
        print(json.dumps({"purged": purged}) if args.json else f"purged {letters(purged)}")
        return EXIT_OK
    page = client.dead_letters(args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return EXIT_OK
    from rich.console import Console

    from cli.terminal import print_dead_letters

    print_dead_letters(Console(), page)
    return EXIT_OK


COMMANDS = {  # the server commands never get here: main() starts them before any client import
    "replay": cmd_replay,
    "workflows": cmd_workflows,
    "submit": cmd_submit,
    "runs": cmd_runs,
    "status": cmd_status,
    "watch": cmd_watch,
    "cancel": cmd_cancel,
    "rerun": cmd_rerun,
    "dead-letters": cmd_dead_letters,
}


SERVER_COMMANDS = frozenset({"standalone", "gateway", "runner", "consumer"})


def cmd_files(args: argparse.Namespace) -> int:
    from cli.files import cmd_files as files_command

    return files_command(args)


COMMANDS["files"] = cmd_files


def cmd_tokens(args: argparse.Namespace) -> int:
    from cli.admin import cmd_tokens as tokens_command

    return tokens_command(args)


def cmd_audit(args: argparse.Namespace) -> int:
    from cli.admin import cmd_audit as audit_command

    return audit_command(args)


COMMANDS["tokens"] = cmd_tokens
COMMANDS["audit"] = cmd_audit


def cmd_artefacts(args: argparse.Namespace) -> int:
    from cli import artefacts

    try:
        return artefacts.COMMANDS[args.command](args)
    except artefacts.ArtefactsUsageError as exc:
        raise UsageError(str(exc)) from None


for _name in ("logs", "outputs", "resume"):
    COMMANDS[_name] = cmd_artefacts


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
