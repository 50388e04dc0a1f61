"""Runs: submit (every check up front), read, list, cancel, rerun; workflows; events."""

from __future__ import annotations

import contextlib
import copy
import io
import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from snakedeck import bundles, envelope, filekinds, json_limits, messages, projection
from snakedeck.auth import Principal, Role
from snakedeck.bus.base import BusError
from snakedeck.documents import (
    RunDoc,
    RunFileRef,
    WorkflowDoc,
    public,
)
from snakedeck.notify import NotifyTarget
from snakedeck.run_inputs import check_inputs, file_ref, is_file_id
from snakedeck.service.access import audited, require, require_owner
from snakedeck.service.base import (
    MAX_EVENTS_LIMIT,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    Doc,
    ServiceBase,
)
from snakedeck.service.errors import (
    Conflict,
    Invalid,
    NotFound,
    Unavailable,
    invalid,
    unavailable_on_backend_errors,
)
from snakedeck.service.notify import checked_targets
from snakedeck.states import RunState, is_terminal
from snakedeck.store import (
    BlobNotFound,
    RunExists,
    RunFilter,
    StoreError,
)
from snakedeck.workflows import (
    PRIVATE_NAME,
    ConfigInvalid,
    UnknownWorkflow,
    Workflow,
    WorkflowError,
    load_bundle,
)

CONFIG_FILE_LIMITS = json_limits.Limits(max_depth=32, max_string=64 * 1024, max_items=10_000)
"""How deep and large a registered config file may be (it becomes a run's config)."""

_B32 = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford: no i, l, o, u


def new_run_id(now: float | None = None) -> str:
    """10 chars of milliseconds (sortable) + 8 random chars, all lowercase alphanumeric."""
    millis = int((time.time() if now is None else now) * 1000)
    head = "".join(_B32[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    rand = int.from_bytes(secrets.token_bytes(5))
    tail = "".join(_B32[(rand >> (5 * i)) & 31] for i in reversed(range(8)))
    return head + tail


def _check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise invalid("tags", f"at most {MAX_TAGS} tags")
    clean: dict[str, str] = {}
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or not all(c.isalnum() or c in "-_." for c in key):
            raise invalid(
                f"tags.{key}",
                f"tag names use letters, digits, '-', '_', '.' (1-{MAX_TAG_KEY} chars)",
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise invalid(f"tags.{key}", f"must be a string of at most {MAX_TAG_VALUE} chars")
        clean[key] = value
    return clean


def _invalid_all(detail: str, errors: list[dict[str, str]]) -> Invalid:
    listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Invalid(f"{detail}: {listed}", errors)


def merge_config(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` on top of ``base``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _config_field(field: str) -> str:
    if not field or field == "config":
        return "config"
    return field if field.startswith("config.") else f"config.{field}"


class Runs(ServiceBase):
    """Runs, workflows and events."""

    def list_workflows(self) -> list[WorkflowDoc]:
        return [wf.to_dict() for wf in self.registry.list(strict=False)]

    def get_workflow(self, name: str) -> WorkflowDoc:
        try:
            return self.registry.get(name).to_dict()
        except UnknownWorkflow:
            raise NotFound(f"no workflow named {name!r} is registered") from None

    @audited("run.submit", created="run_id", status=201)
    @unavailable_on_backend_errors
    def submit_run(
        self,
        workflow: str,
        config: Mapping[str, Any] | None = None,
        inputs: Mapping[str, str] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        by: Principal,
        config_file: str | None = None,
        notify: Sequence[NotifyTarget | Mapping[str, Any]] | None = None,
        cores: int | None = None,
    ) -> Doc:
        """Check everything up front (workflow available, config file, merged config against
        the schema, every input and sheet, notify targets), store the run as QUEUED, then
        enqueue it; a bus failure leaves a SYSTEM_ERROR run. The run records ``by``'s name as
        its ``user``. A tag ``snakedeck.notify`` is taken as notify targets, not kept."""
        require(by, Role.SUBMIT, "submitting a run")
        if cores is not None and not 1 <= cores <= self.settings.cores:
            raise invalid("cores", f"must be between 1 and {self.settings.cores}, got {cores}")
        return self._submit(
            workflow,
            config,
            inputs,
            tags,
            by,
            config_file=config_file,
            cores=cores,
            notify=notify,
        )

    @audited("run.submit", created="run_id", status=201)
    @unavailable_on_backend_errors
    def submit_attached_run(
        self,
        attachments: Sequence[bundles.Attachment],
        entry: str = bundles.DEFAULT_ENTRY,
        config: Mapping[str, Any] | None = None,
        inputs: Mapping[str, str] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        by: Principal,
        notify: Sequence[NotifyTarget | Mapping[str, Any]] | None = None,
        cores: int | None = None,
    ) -> Doc:
        """A run of a private workflow: the uploaded files (WES ``workflow_attachment``), with
        ``entry`` the Snakefile among them. Refused unless ``SNAKEDECK_ALLOW_ATTACHMENTS`` is
        on, since they are code run on the server. Every name and limit is checked, the bundle
        is read as a workflow (its ``workflow.yaml`` if any: schema, inputs, results) and the
        run checked against it as any submission is; then its files are stored as blobs and
        the run records them (``workflow_source`` ``attachment``)."""
        require(by, Role.SUBMIT, "submitting a run")
        if not self.settings.allow_attachments:
            raise invalid(
                "workflow_attachment",
                "refused: this server runs only registered workflows (an attachment would be "
                "code executed on the server; SNAKEDECK_ALLOW_ATTACHMENTS is off)",
            )
        if cores is not None and not 1 <= cores <= self.settings.cores:
            raise invalid("cores", f"must be between 1 and {self.settings.cores}, got {cores}")
        try:
            names = bundles.check_names(a.name for a in attachments)
            bundles.check_limits(
                attachments,
                max_files=self.settings.attachment_max_files,
                max_bytes=self.settings.attachment_max_bytes,
            )
            entry = bundles.check_entry(entry, names)
        except bundles.BundleError as exc:
            raise invalid("workflow_attachment", str(exc)) from None
        with tempfile.TemporaryDirectory(prefix="snakedeck-bundle-") as tmp:
            try:
                for attachment in attachments:
                    target = Path(tmp, attachment.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(attachment.data)
            except OSError as exc:  # its text would name the temporary folder
                raise invalid(
                    "workflow_attachment",
                    f"the files cannot be laid out as a folder ({exc.strerror or 'refused'})",
                ) from None
            try:
                wf = load_bundle(Path(tmp), entry)
            except WorkflowError as exc:  # it names files relative to the bundle
                raise invalid("workflow_attachment", str(exc)) from None
            return self._submit_workflow(
                wf,
                PRIVATE_NAME,
                config,
                inputs,
                tags,
                by,
                notify=notify,
                cores=cores,
                attachments=(entry, attachments),
            )

    def _store_bundle(
        self, entry: str, attachments: Sequence[bundles.Attachment]
    ) -> bundles.BundleDoc:
        files: list[bundles.BundleFile] = []
        for attachment in attachments:
            blob = self.store.put_blob(io.BytesIO(attachment.data))
            files.append({"path": attachment.name, "sha256": blob.sha256, "size": blob.size})
        return {
            "source": bundles.SOURCE,
            "entry": entry,
            "files": files,
            "size": sum(f["size"] for f in files),
        }

    def _submit(
        self,
        workflow: str,
        config: Mapping[str, Any] | None,
        inputs: Mapping[str, str] | None,
        tags: Mapping[str, Any] | None,
        by: Principal,
        *,
        config_file: str | None = None,
        rerun_of: str | None = None,
        notify: Sequence[NotifyTarget | Mapping[str, Any]] | None = None,
        cores: int | None = None,
    ) -> Doc:
        try:
            wf = self.registry.get(workflow)
        except UnknownWorkflow:
            raise invalid("workflow", f"no workflow named {workflow!r} is registered") from None
        return self._submit_workflow(
            wf,
            workflow,
            config,
            inputs,
            tags,
            by,
            config_file=config_file,
            rerun_of=rerun_of,
            notify=notify,
            cores=cores,
        )

    def _submit_workflow(
        self,
        wf: Workflow,
        workflow: str,
        config: Mapping[str, Any] | None,
        inputs: Mapping[str, str] | None,
        tags: Mapping[str, Any] | None,
        by: Principal,
        *,
        config_file: str | None = None,
        rerun_of: str | None = None,
        notify: Sequence[NotifyTarget | Mapping[str, Any]] | None = None,
        cores: int | None = None,
        attachments: tuple[str, Sequence[bundles.Attachment]] | None = None,
    ) -> Doc:
        """Check the run against ``wf`` (registered, or a private bundle's), store it QUEUED
        and enqueue it."""
        user = by.name
        overrides = dict(config or {})
        missing = wf.missing_programs()
        if missing:
            raise invalid(
                "workflow",
                f"workflow {workflow!r} is unavailable: it needs {', '.join(missing)}, "
                "which this server does not have",
            )
        config_ref: RunFileRef | None = None
        merged = overrides
        if config_file:
            config_ref, from_file = self._config_file(config_file)
            merged = merge_config(from_file, overrides)
        self._validate_config(wf, merged)
        if inputs is not None and not isinstance(inputs, Mapping):
            if inputs:  # the old list form
                raise invalid("inputs", "map each declared input name to a registered file id")
            inputs = None
        checked = check_inputs(self.store, wf, dict(inputs or {}))
        if checked.errors:
            raise _invalid_all(f"inputs do not fit workflow {workflow!r}", checked.errors)
        targets, tags = checked_targets(self.settings, notify, tags)
        clean_tags = _check_tags(tags)
        file_ids = sorted({*checked.file_ids, *([config_ref["file_id"]] if config_ref else [])})
        bundle = self._store_bundle(*attachments) if attachments else None

        while True:
            run_id = new_run_id()
            run = projection.new_run(run_id)
            run.update(
                workflow=workflow,
                workflow_version=None if bundle else wf.version,
                config=merged,
                inputs=checked.refs,
                config_file=config_ref,
                file_ids=file_ids,
                tags=clean_tags,
                user=user,
                submitted_at=envelope.now_iso(),
            )
            if bundle:
                run["workflow_source"] = bundles.SOURCE
                run["workflow_bundle"] = bundle
            if rerun_of:
                run["rerun_of"] = rerun_of
            if cores is not None:
                run["cores"] = cores
            try:
                self.store.create_run(run)
                break
            except RunExists:  # a random collision within one millisecond: just try again
                continue
        if targets:  # before the run is queued: its first state change already notifies
            self.store.save_notify_targets(run_id, [t.model_dump() for t in targets])
        gone = [fid for fid in file_ids if self.store.get_file(fid) is None]
        if gone:  # deleted between our checks and the run's creation
            reason = f"file(s) {', '.join(gone)} were deleted while the run was submitted"
            self._fail_queued(run_id, reason)
            raise Conflict(f"run {run_id} was not started: {reason}")

        command: messages.SubmitCommand = {
            "run_id": run_id,
            "workflow": workflow,
            "config": merged,
            "tags": clean_tags,
        }
        if checked.refs:
            command["inputs"] = checked.refs
        if bundle:
            command["workflow_source"] = bundles.SOURCE
            command["workflow_bundle"] = bundle
        if cores is not None:
            command["cores"] = cores
        try:
            self.bus.submit_run(dict(command))
        except BusError as exc:
            reason = f"could not enqueue the run: the message broker is unavailable ({exc})"
            self._fail_queued(run_id, reason)
            raise Unavailable(f"run {run_id} was not started: {reason}") from None
        return {"run_id": run_id, "state": RunState.QUEUED.value}

    def _fail_queued(self, run_id: str, reason: str) -> None:
        self.store.update_run(
            run_id,
            {
                "state": RunState.SYSTEM_ERROR.value,
                "state_reason": reason,
                "finished_at": envelope.now_iso(),
            },
            only_states=[RunState.QUEUED.value],
        )

    def _validate_config(self, wf: Workflow, config: dict[str, Any]) -> None:
        try:
            self.registry.validate_config(wf, config)
        except ConfigInvalid as exc:
            errors = [
                {"field": _config_field(e["field"]), "message": e["message"]} for e in exc.errors
            ] or [{"field": "config", "message": str(exc)}]
            raise _invalid_all(f"config does not match workflow {wf.name!r}", errors) from None

    def _config_file(self, file_id: str) -> tuple[RunFileRef, dict[str, Any]]:
        doc = self.store.get_file(file_id) if is_file_id(file_id) else None
        if doc is None:
            raise invalid("config_file", f"no registered file has the id {file_id!r}")
        if doc.get("kind") != "config":
            raise invalid(
                "config_file",
                f"file {file_id} ({doc.get('name', '')!r}) is {doc.get('kind')}, not a config "
                "file (YAML or JSON, registered with kind config)",
            )
        try:
            with self.store.open_blob(doc["sha256"]) as f:
                loaded = filekinds.read_config(f, doc.get("format", "yaml"))
            json_limits.check(loaded, CONFIG_FILE_LIMITS)
        except BlobNotFound:
            raise invalid("config_file", f"the content of file {file_id} is missing") from None
        except filekinds.FileKindError as exc:
            raise invalid("config_file", f"file {file_id} {exc}") from None
        except json_limits.JsonLimitError as exc:
            raise invalid("config_file", f"file {file_id}: {exc}") from None
        return file_ref(doc), loaded

    @unavailable_on_backend_errors
    def get_run(self, run_id: str) -> RunDoc:
        """The whole run document, with ``progress`` and per-rule ``rule_counts``, and while
        it runs an ``eta`` (an estimate, with its basis)."""
        run = public(self._run(run_id))
        if run.get("state") == RunState.RUNNING.value:
            try:
                estimate = self._eta(run)
            except StoreError:
                estimate = None  # an estimate is a nicety: the run itself is answered
            if estimate is not None:
                run["eta"] = estimate  # type: ignore[typeddict-item]
        return run

    @unavailable_on_backend_errors
    def list_runs(
        self,
        *,
        state: str | None = None,
        workflow: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        user: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> Doc:
        if state is not None and state not in RunState.__members__:
            raise invalid("state", f"{state!r} is not a run state ({', '.join(RunState)})")
        page = self.store.list_runs(
            RunFilter(state=state, workflow=workflow, tag=tag, q=q, user=user),
            page_size=page_size,
            page_token=page_token,
        )
        return {
            "runs": [projection.run_summary(r) for r in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }

    @audited("run.cancel", target="run_id", status=202)
    @unavailable_on_backend_errors
    def cancel_run(self, run_id: str, *, by: Principal) -> Doc:
        """Ask the runner to stop a run; a finished run cannot be cancelled (Conflict)."""
        require(by, Role.SUBMIT, "cancelling a run")
        run = self._run(run_id)
        require_owner(by, run, "cancelling a run")
        state = run.get("state")
        if is_terminal(state):
            raise Conflict(f"run {run_id} already ended in state {state}; nothing to cancel")
        if run.get("hand_run"):
            raise Conflict(
                f"run {run_id} is a Snakemake started by hand: stop it where it runs "
                "(snakedeck only watches it)"
            )
        changed = self.store.update_run(
            run_id,
            {
                "cancel_requested": True,
                "cancel_requested_at": envelope.now_iso(),
                "cancel_requested_by": by.name,
            },
            only_states=[s.value for s in RunState if not is_terminal(s)],
        )
        if not changed:  # it ended between our read and our write
            now = self._run(run_id).get("state")
            raise Conflict(f"run {run_id} already ended in state {now}; nothing to cancel")
        self.bus.send_control(dict(messages.cancel(run_id)))
        self._announce_run(run_id)
        return {"run_id": run_id, "state": state, "cancel_requested": True}

    def _announce_run(self, run_id: str) -> None:
        """Tell every gateway's subscribers that a run changed outside its event stream (a
        cancel request): best effort, like every update."""
        run = self.store.get_run(run_id)
        if run is None:
            return
        update: messages.PersistedUpdate = {
            "kind": "persisted",
            "events": [],
            "runs": [projection.run_summary(run)],
            "jobs": [],
        }
        with contextlib.suppress(BusError):  # subscribers re-read the store when idle
            self.bus.publish_update(dict(update))

    @audited("run.rerun", target="run_id", created="run_id", status=201)
    @unavailable_on_backend_errors
    def rerun_run(self, run_id: str, *, by: Principal) -> Doc:
        """A new run with the old one's workflow, merged config, tags and the very same
        registered files (409 naming any that was deleted or changed meanwhile). The new run
        is ``by``'s."""
        require(by, Role.SUBMIT, "rerunning a run")
        old = self._run(run_id)
        require_owner(by, old, "rerunning a run")
        if old.get("hand_run") or not old.get("workflow"):
            raise Conflict(
                f"run {run_id} was started by hand, not from a registered workflow, "
                "so snakedeck cannot run it again"
            )
        if bundles.is_private(old):
            raise Conflict(
                f"run {run_id} brought its own workflow (workflow_attachment), so it is not "
                "rerun from the registry; submit its attachments again, or resume it"
            )
        recorded = old.get("inputs") or {}
        if not isinstance(recorded, Mapping):
            raise Conflict(f"run {run_id} recorded its inputs in an older form; submit it anew")
        refs: list[tuple[str, Mapping[str, Any]]] = []
        for name, ref in recorded.items():
            refs.append((f"input {name!r}", ref))
            refs += [(f"a row of input {name!r}", r) for r in (ref.get("files") or {}).values()]
        config_ref = old.get("config_file")
        if config_ref:
            refs.append(("the config file", config_ref))
        for what, ref in refs:
            now = self.store.get_file(str(ref["file_id"]))
            if now is None or now.get("sha256") != ref.get("sha256"):
                raise Conflict(
                    f"run {run_id} cannot be repeated exactly: file {ref['file_id']} "
                    f"({ref.get('name', '')!r}, {what}) was deleted"
                )
        return self._submit(
            str(old["workflow"]),
            old.get("config") or {},
            {name: str(ref["file_id"]) for name, ref in recorded.items()},
            old.get("tags") or {},
            by,
            config_file=str(config_ref["file_id"]) if config_ref else None,
            rerun_of=run_id,
            notify=self.store.notify_targets(run_id),
        )

    @unavailable_on_backend_errors
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> Doc:
        self._run(run_id)
        if not 0 <= after_seq <= envelope.MAX_SEQ:
            raise invalid("after_seq", f"must be between 0 and 2^53, got {after_seq}")
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise invalid("limit", f"must be between 1 and {MAX_EVENTS_LIMIT}, got {limit}")
        events = [
            public(e) for e in self.store.list_events(run_id, after_seq=after_seq, limit=limit)
        ]
        more = len(events) == limit
        return {"events": events, "next_after_seq": events[-1]["seq"] if more else None}
