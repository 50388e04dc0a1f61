"""``snakedeck files …``: register (upload, add-url), list, get and remove files; and what
``submit`` needs of them (``--input NAME=FILE_ID_OR_PATH``, ``--config-file FILE_ID_OR_PATH``:
a local path is uploaded first, with a progress bar when it is big)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cli.connection import EXIT_OK, EXIT_USAGE, make_client
from snakedeck.filekinds import KINDS

if TYPE_CHECKING:  # the HTTP client is imported only when a client command runs (gevent)
    from snakedeck.client import Client

PROGRESS_FROM: Final = 4 * 1024 * 1024
"""Uploads at least this big show a progress bar (on a terminal)."""


class FilesUsageError(ValueError):
    pass


def add_parsers(sub: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``files`` and its actions to the top-level subparsers ``sub``."""
    files = sub.add_parser(
        "files", help="registered files: upload, add-url, list, get, rm", description=__doc__
    )
    actions = files.add_subparsers(dest="files_command", required=True, metavar="ACTION")

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=help_)
        client_options(p)
        return p

    def registration(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kind", choices=KINDS, help="what the file is (default: detected)")
        p.add_argument(
            "--tag", action="append", default=[], metavar="KEY=VALUE", help="tag (repeat)"
        )
        p.add_argument("--workflow", help="the workflow the file is for (config files)")

    p = action("upload", "upload a local file (streamed) and register it")
    p.add_argument("path", type=Path)
    registration(p)
    p = action("add-url", "have the server fetch a URL and register what it gets")
    p.add_argument("file_url", metavar="URL")
    p.add_argument("--name", help="display name (default: the URL's last part)")
    registration(p)
    p = action("list", "list registered files, newest first")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--tag", metavar="KEY[=VALUE]")
    p.add_argument("--workflow")
    p.add_argument("-q", "--query", help="free text")
    p.add_argument("--limit", type=int, default=50)
    p = action("get", "show a file's record, or download it with -o")
    p.add_argument("file_id")
    p.add_argument("-o", "--output", type=Path, help="write the content here ('-': stdout)")
    p = action("rm", "unregister a file (refused while an active run uses it)")
    p.add_argument("file_id")


def tags_of(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FilesUsageError(f"--tag {pair!r} must look like KEY=VALUE")
        tags[key.strip()] = value
    return tags


def upload(
    client: Client,
    path: Path,
    *,
    kind: str | None = None,
    tags: dict[str, str] | None = None,
    workflow: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Upload one local file; a progress bar on stderr for big files on a terminal."""
    if not path.is_file():
        raise FilesUsageError(f"{path} is not a file")
    size = path.stat().st_size
    show = not quiet and size >= PROGRESS_FROM and sys.stderr.isatty()
    if not show:
        return client.upload_file(path, kind=kind, tags=tags, workflow=workflow)
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn())
    with Progress(*columns, TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task(f"uploading {path.name}", total=size)
        return client.upload_file(
            path,
            kind=kind,
            tags=tags,
            workflow=workflow,
            progress=lambda sent: bar.update(task, completed=sent),
        )


def registered(
    client: Client, value: str, what: str, *, kind: str | None = None, quiet: bool = False
) -> str:
    """A file id for ``value``: an existing local path is uploaded first, else it must be a
    registered file's id."""
    from snakedeck.run_inputs import is_file_id

    path = Path(value).expanduser()
    if path.is_file():
        doc = upload(client, path, kind=kind, quiet=quiet)
        if not quiet:
            print(f"{what}: uploaded {path} as file {doc['file_id']}", file=sys.stderr)
        return doc["file_id"]
    if path.exists():
        raise FilesUsageError(f"{what} {value}: not a regular file")
    if not is_file_id(value):
        raise FilesUsageError(f"{what} {value}: no such local file, and not a file id")
    return value


def submission_files(
    client: Client,
    input_pairs: Sequence[str],
    config_file: str | None,
    *,
    quiet: bool = False,
) -> tuple[dict[str, str], str | None]:
    """``--input NAME=FILE_ID_OR_PATH`` and ``--config-file FILE_ID_OR_PATH`` as file ids."""
    inputs: dict[str, str] = {}
    for pair in input_pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise FilesUsageError(f"--input {pair!r} must look like NAME=FILE_ID_OR_PATH")
        inputs[name.strip()] = registered(client, value.strip(), f"--input {name}", quiet=quiet)
    config_id = None
    if config_file:
        config_id = registered(client, config_file, "--config-file", kind="config", quiet=quiet)
    return inputs, config_id


def cmd_files(args: argparse.Namespace) -> int:
    try:
        return ACTIONS[args.files_command](args, make_client(args))
    except FilesUsageError as exc:
        print(f"snakedeck files {args.files_command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _show(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(doc["file_id"])
    return EXIT_OK


def _upload(args: argparse.Namespace, client: Client) -> int:
    doc = upload(
        client,
        args.path,
        kind=args.kind,
        tags=tags_of(args.tag),
        workflow=args.workflow,
        quiet=args.json,
    )
    return _show(args, doc)


def _add_url(args: argparse.Namespace, client: Client) -> int:
    doc = client.add_url(
        args.file_url,
        name=args.name,
        kind=args.kind,
        tags=tags_of(args.tag),
        workflow=args.workflow,
    )
    return _show(args, doc)


def _list(args: argparse.Namespace, client: Client) -> int:
    params = {"kind": args.kind, "tag": args.tag, "q": args.query, "workflow": args.workflow}
    found: list[dict[str, Any]] = []
    for doc in client.iter_files(**params, page_size=max(1, min(args.limit, 500))):
        found.append(doc)
        if len(found) >= args.limit:
            break
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("file", no_wrap=True, min_width=18)  # ids whole, to copy them
    for header in ("name", "kind", "format", "size", "created", "tags"):
        table.add_column(header, overflow="fold")
    for doc in found:
        table.add_row(
            doc["file_id"],
            doc.get("name", ""),
            doc.get("kind", ""),
            doc.get("format", ""),
            str(doc.get("size", "")),
            doc.get("created", "")[:19],
            ", ".join(f"{k}={v}" for k, v in (doc.get("tags") or {}).items()),
        )
    Console().print(table)
    return EXIT_OK


def _get(args: argparse.Namespace, client: Client) -> int:
    if args.output is None:
        doc = client.file(args.file_id)
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if str(args.output) == "-":
        client.download(args.file_id, sys.stdout.buffer)
        return EXIT_OK
    target = args.output
    if target.is_dir():
        from snakedeck.filekinds import sanitized_name

        name = client.file(args.file_id).get("name") or args.file_id
        target = target / sanitized_name(name, args.file_id)
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as sink:
            written = client.download(args.file_id, sink)
        partial.replace(target)
    except OSError as exc:
        raise FilesUsageError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    if not args.json:
        print(f"wrote {written} bytes to {target}", file=sys.stderr)
    return EXIT_OK


def _rm(args: argparse.Namespace, client: Client) -> int:
    client.delete_file(args.file_id)
    if not args.json:
        print(f"removed file {args.file_id}", file=sys.stderr)
    return EXIT_OK


ACTIONS: Final[dict[str, Callable[[argparse.Namespace, Client], int]]] = {
    "upload": _upload,
    "add-url": _add_url,
    "list": _list,
    "get": _get,
    "rm": _rm,
}
