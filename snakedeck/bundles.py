"""Private workflows: a WES ``workflow_attachment`` bundle, checked, stored and described.

A bundle is a set of plain files, each named by a relative path inside the workflow's folder
(``Snakefile``, ``rules/count.smk``, ``workflow.yaml``…). Only plain files can be expressed
(multipart parts with a filename; no archive is unpacked), so a bundle has no links; every
name is checked here, on the gateway when the bundle arrives and again on the runner before a
file is written: no ``..`` segment, no absolute path (``/``, a drive letter, a backslash), no
empty segment, no control character, no duplicate. The files are stored as content-addressed
blobs (the mechanism of registered files), so a runner on another host needs only the store;
the run document and the submit command carry the :class:`BundleDoc`, which names no server
path.

Stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NotRequired, TypedDict

SOURCE: Final = "attachment"
"""``workflow_source`` of a run whose workflow came with it (the run's ``workflow`` too)."""
DEFAULT_ENTRY: Final = "Snakefile"
MAX_NAME: Final = 255
"""Longest name (whole relative path) of one file, in characters."""
MAX_SEGMENT: Final = 128
"""Longest folder or file name in a path, in UTF-8 bytes (file systems allow 255)."""
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BundleError(ValueError):
    """A bundle (or one of its names) that cannot be used; the message says why."""


class BundleFile(TypedDict):
    path: str
    """Relative path inside the workflow folder (``/``-separated)."""
    sha256: str
    size: int


class BundleDoc(TypedDict):
    source: str
    """Always :data:`SOURCE`."""
    entry: str
    """The Snakefile to run, one of ``files``."""
    files: list[BundleFile]
    size: NotRequired[int]
    """Total bytes of the files."""


@dataclass(frozen=True)
class Attachment:
    """One uploaded file of a bundle, as the transport read it."""

    name: str
    data: bytes


def check_name(name: object) -> str:
    """The name as a relative ``/``-separated path inside the bundle, or :class:`BundleError`
    saying what is wrong with it."""
    if not isinstance(name, str) or name == "":
        raise BundleError("a workflow_attachment has an empty file name")
    shown = repr(name[:80])
    if len(name) > MAX_NAME:
        raise BundleError(f"file name {shown} is longer than {MAX_NAME} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise BundleError(f"file name {shown} contains a control character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BundleError(f"file name {shown} is not valid Unicode text") from None
    if "\\" in name:
        raise BundleError(
            f"file name {shown} contains a backslash; use '/' between folders "
            "(names are relative paths inside the workflow)"
        )
    if name.startswith("/") or _DRIVE.match(name):
        raise BundleError(
            f"file name {shown} is an absolute path; names are relative paths inside the "
            "workflow (e.g. Snakefile, rules/count.smk)"
        )
    segments = name.split("/")
    if ".." in segments:
        raise BundleError(f"file name {shown} has a '..' segment: it would leave the workflow")
    if any(s in ("", ".") for s in segments):
        raise BundleError(f"file name {shown} has an empty or '.' segment")
    if any(len(s.encode("utf-8")) > MAX_SEGMENT for s in segments):
        raise BundleError(f"file name {shown} has a segment longer than {MAX_SEGMENT} bytes")
    return name


def check_names(names: Iterable[object]) -> list[str]:
    """Every name checked; a name given twice, or both a file and a folder, is refused."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in names:
        name = check_name(raw)
        if name in seen:
            raise BundleError(f"file name {name[:80]!r} is given more than once")
        seen.add(name)
        out.append(name)
    folders = {"/".join(n.split("/")[:i]) for n in out for i in range(1, n.count("/") + 1)}
    clash = sorted(seen & folders)
    if clash:
        raise BundleError(f"{clash[0][:80]!r} is given both as a file and as a folder")
    return out


def check_limits(attachments: Iterable[Attachment], *, max_files: int, max_bytes: int) -> None:
    files = list(attachments)
    if len(files) > max_files:
        raise BundleError(
            f"{len(files)} workflow_attachment files given; this server takes at most "
            f"{max_files} (SNAKEDECK_ATTACHMENT_MAX_FILES)"
        )
    total = sum(len(a.data) for a in files)
    if total > max_bytes:
        raise BundleError(
            f"the workflow_attachment files hold more than {max_bytes} bytes, the most this "
            "server takes (SNAKEDECK_ATTACHMENT_MAX_BYTES)"
        )


def check_entry(entry: str, names: Iterable[str]) -> str:
    """``workflow_url`` with attachments: the relative path of the Snakefile among them."""
    entry = entry.strip() or DEFAULT_ENTRY
    if "://" in entry or entry.startswith(("http:", "https:", "file:")):
        raise BundleError(
            f"workflow_url {entry[:80]!r} must be the relative path of the Snakefile among "
            "the attachments (this server does not fetch workflows from URLs)"
        )
    entry = check_name(entry.removeprefix("./"))
    if entry not in set(names):
        raise BundleError(
            f"workflow_url {entry[:80]!r} names no attached file; attach the Snakefile "
            "under that name, or name one of the attachments"
        )
    return entry


def parse_doc(raw: object) -> BundleDoc:
    """A :class:`BundleDoc` from a command or a run document, every name checked again (the
    runner's defence: it writes these names into the run's directory)."""
    if not isinstance(raw, Mapping) or raw.get("source") != SOURCE:
        raise BundleError("the run's workflow bundle is not described")
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise BundleError("the run's workflow bundle lists no files")
    clean: list[BundleFile] = []
    for item in files:
        if not isinstance(item, Mapping):
            raise BundleError("the run's workflow bundle lists a file it does not describe")
        sha, size = item.get("sha256"), item.get("size")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise BundleError("a file of the run's workflow bundle names no stored content")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError("a file of the run's workflow bundle has no size")
        clean.append({"path": str(item.get("path")), "sha256": sha, "size": size})
    names = check_names(f["path"] for f in clean)
    entry = check_entry(str(raw.get("entry") or ""), names)
    return {
        "source": SOURCE,
        "entry": entry,
        "files": clean,
        "size": sum(f["size"] for f in clean),
    }


def is_private(run: Mapping[str, Any]) -> bool:
    """Whether a run (or submit command) brought its own workflow."""
    return run.get("workflow_source") == SOURCE or isinstance(run.get("workflow_bundle"), Mapping)
