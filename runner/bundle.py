"""A private workflow (WES attachments) fetched from the store into the run's directory.

The gateway stored each attached file as a blob; the run's ``workflow_bundle`` names them by
relative path and sha256. The runner writes them to ``DATA_DIR/runs/<run_id>/workflow/``
(checking every name again and every file's sha256 on the way, as for registered inputs) and
reads that folder as the run's workflow. A resume and a recovery after a restart use this
copy, never the registry; if the folder is gone, it is fetched again from the store.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from runner.inputs import InputsError, copy_verified
from snakedeck import bundles
from snakedeck.rundir import RunDir
from snakedeck.settings import Settings
from snakedeck.store.blobs import BlobStore
from snakedeck.workflows import Workflow, load_bundle

STAGED_MARK = ".snakedeck-bundle-complete"
"""Written after the last file: a folder without it is fetched again."""


class BundleRefused(InputsError):
    """This runner does not run private workflows, or the bundle is not usable."""


def allowed(settings: Settings) -> None:
    """Defence in depth: the runner refuses attachments unless its own settings allow them."""
    if not settings.allow_attachments:
        raise BundleRefused(
            "this runner does not run attached workflows (workflow_attachment): "
            "SNAKEDECK_ALLOW_ATTACHMENTS is off on it"
        )


def stage_bundle(
    store: BlobStore, rd: RunDir, raw: Mapping[str, Any] | None, settings: Settings
) -> Workflow:
    """The run's own workflow, in ``workflow/``: fetched unless a complete copy is there."""
    allowed(settings)
    try:
        bundle = bundles.parse_doc(raw)
    except bundles.BundleError as exc:
        raise BundleRefused(str(exc)) from None
    base = rd.workflow
    if not (base / STAGED_MARK).is_file():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        root = base.resolve()
        for item in bundle["files"]:
            target = (root / item["path"]).resolve()
            if not target.is_relative_to(root) or target == root:
                raise BundleRefused(f"file name {item['path'][:80]!r} is not usable")
            copy_verified(store, item, target, f"workflow file {item['path']!r}")
        (base / STAGED_MARK).touch()
    return load_bundle(base, bundle["entry"])
