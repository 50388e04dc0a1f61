"""``snakedeck tokens …`` and ``snakedeck audit``: who may use the gateway, and what they did.

``tokens create|list|revoke`` work on the store the server uses (the same ``SNAKEDECK_*``
settings), so the first admin token can be made before any token exists; with ``--file`` they
work on a token file (``SNAKEDECK_TOKEN_FILE``: lines ``name:role:sha256hex``) instead, for
deployments that keep tokens out of the store. A new token is printed once, on stdout; only
its sha256 is kept. Changes in the store are audited; a token file keeps no audit trail (its
history is the file's own). ``audit`` reads ``GET /api/v1/audit`` (an admin token).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from cli.connection import EXIT_OK, EXIT_USAGE, make_client

ROLES: Final = ("read", "submit", "admin")


class AdminUsageError(ValueError):
    pass


def add_parsers(sub: Any, client_options: Callable[[argparse.ArgumentParser], Any]) -> None:
    tokens = sub.add_parser(
        "tokens", help="API tokens with roles: create, list, revoke", description=__doc__
    )
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=help_)
        p.add_argument("--data-dir", type=Path, help="data directory (SNAKEDECK_DATA_DIR)")
        p.add_argument(
            "--file", type=Path, help="a token file instead of the store (SNAKEDECK_TOKEN_FILE)"
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = action("create", "make a token (printed once) with a role")
    p.add_argument("name", help="shown in runs and the audit trail, e.g. ana or ci-bot")
    p.add_argument("--role", choices=ROLES, default="submit", help="default: submit")
    action("list", "list tokens (never the tokens themselves)").add_argument(
        "--all", action="store_true", help="include revoked tokens"
    )
    action("revoke", "revoke a token by name (it stops working within seconds)").add_argument(
        "name"
    )

    p = client_options(sub.add_parser("audit", help="the audit trail, newest first"))
    p.add_argument("--actor", help="a token's name")
    p.add_argument("--action", help="e.g. run.cancel, or a prefix such as run.")
    p.add_argument("--target", help="a run id, file id or token name")
    p.add_argument("--limit", type=int, default=50)


def cli_principal() -> Any:
    from snakedeck.auth import Principal, Role

    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN, source="cli")


def cmd_tokens(args: argparse.Namespace) -> int:
    try:
        if args.file is not None:
            return _file_tokens(args, args.file)
        return _store_tokens(args)
    except AdminUsageError as exc:
        print(f"snakedeck tokens: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _store_tokens(args: argparse.Namespace) -> int:
    from snakedeck import auth
    from snakedeck.settings import Settings
    from snakedeck.store import StoreError, open_store

    settings = Settings.from_env(data_dir=args.data_dir)
    try:
        store = open_store(settings)
    except StoreError as exc:
        raise AdminUsageError(f"cannot open the store: {exc}") from None
    try:
        if args.tokens_command == "create":
            try:
                token, doc = auth.create_token(
                    store, args.name, auth.Role.parse(args.role), by=cli_principal()
                )
            except auth.TokenChangeError as exc:
                raise AdminUsageError(str(exc)) from None
            return _created(args, token, doc["name"], doc["role"])
        if args.tokens_command == "revoke":
            try:
                doc = auth.revoke_token(store, args.name, by=cli_principal())
            except auth.TokenChangeError as exc:
                raise AdminUsageError(str(exc)) from None
            _say(args, f"revoked {doc['name']}; it stops working within {auth.CACHE_SECONDS:g} s")
            return EXIT_OK
        listed = store.list_tokens(include_revoked=args.all)
        rows = [
            {k: d.get(k) for k in ("name", "role", "created", "last_used_at", "revoked_at")}
            for d in listed
        ]
        return _listed(args, rows)
    finally:
        store.close()


def _file_tokens(args: argparse.Namespace, path: Path) -> int:
    from snakedeck import auth
    from snakedeck.store.tokens import TOKEN_NAME

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        entries = auth.parse_token_file(text, str(path))
    except ValueError as exc:
        raise AdminUsageError(str(exc)) from None
    if args.tokens_command == "create":
        if not TOKEN_NAME.match(args.name):
            raise AdminUsageError(f"{args.name!r} is not a token name")
        if any(e.name == args.name for e in entries):
            raise AdminUsageError(f"{path} has a token named {args.name!r}; revoke it first")
        token = auth.new_token()
        line = f"{args.name}:{args.role}:{auth.token_hash(token)}\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            if text and not text.endswith("\n"):
                f.write("\n")
            f.write(line)
        return _created(args, token, args.name, args.role)
    if args.tokens_command == "revoke":
        if not any(e.name == args.name for e in entries):
            raise AdminUsageError(f"{path} has no token named {args.name!r}")
        kept = [
            ln for ln in text.splitlines(keepends=True) if ln.split(":", 1)[0].strip() != args.name
        ]
        path.write_text("".join(kept), encoding="utf-8")
        _say(args, f"revoked {args.name}; it stops working within {auth.CACHE_SECONDS:g} s")
        return EXIT_OK
    return _listed(args, [{"name": e.name, "role": e.role.label} for e in entries])


def _created(args: argparse.Namespace, token: str, name: str, role: str) -> int:
    if args.json:
        print(json.dumps({"name": name, "role": role, "token": token}))
    else:
        print(token)
        print(
            f"token {name!r} ({role}) created; it is shown only now, keep it safe", file=sys.stderr
        )
    return EXIT_OK


def _listed(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    if not rows:
        print("no tokens")
        return EXIT_OK
    table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)
    return EXIT_OK


def _say(args: argparse.Namespace, text: str) -> None:
    if args.json:
        print(json.dumps({"message": text}))
    else:
        print(text)


def cmd_audit(args: argparse.Namespace) -> int:

    client = make_client(args)
    entries: list[dict[str, Any]] = []
    for entry in client.iter_audit(actor=args.actor, action=args.action, target=args.target):
        entries.append(entry)
        if len(entries) >= args.limit:
            break
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table("at", "actor", "action", "target", "result", "status", "from", "detail")
    for e in entries:
        table.add_row(
            e.get("at", ""),
            e.get("actor", ""),
            e.get("action", ""),
            e.get("target") or "",
            e.get("result", ""),
            str(e.get("status", "")),
            e.get("source") or "",
            (e.get("detail") or "")[:80],
        )
    Console().print(table)
    return EXIT_OK
