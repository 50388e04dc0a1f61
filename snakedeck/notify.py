"""Notify targets and the notifications a run sends them: what a target is, how it is checked,
what is sent (a JSON webhook document, a Slack incoming-webhook payload, an e-mail) and how it
is signed.

A target is given at submit (REST ``notify``, or the tag :data:`NOTIFY_TAG` that WES clients
use) or by the server (``SNAKEDECK_NOTIFY_TARGETS``). Its secret signs every body with
HMAC-SHA256 (``X-Snakedeck-Signature: sha256=<hex>``) and is never shown: answers carry
:meth:`NotifyTarget.public`. URLs follow the rules of URL fetches (:func:`snakedeck.fetch.
check_url`: no loopback or private address unless ``SNAKEDECK_FETCH_ALLOW_PRIVATE``), checked
at submit and again before every attempt. The notifier process (``consumer/notifier.py``)
sends; this module only builds and checks, so it is pure and cheap to test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from snakedeck.fetch import FetchError, check_url
from snakedeck.settings import Settings, SettingsError

NOTIFY_TAG: Final = "snakedeck.notify"
"""The run tag holding notify targets (how a WES client asks for them): a JSON list of targets,
one target object, or a bare webhook URL. It is taken out of the run's tags, never stored."""
MAX_TARGETS: Final = 10
SIGNATURE_HEADER: Final = "X-Snakedeck-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
EVENT_HEADER: Final = "X-Snakedeck-Event"
USER_AGENT: Final = "snakedeck-notify/1"
DOCUMENT_VERSION: Final = 1

Format = Literal["json", "slack", "email"]
EventName = Literal["state", "job_failed"]
"""``state``: every state change of the run; ``job_failed``: every job that fails."""
EVENT_TYPES: Final[dict[str, EventName]] = {"run_state": "state", "job_error": "job_failed"}
"""Which event envelope type makes which notification."""
_MAILTO = re.compile(r"^mailto:([^@\s,;<>]+@[^@\s,;<>]+)$", re.IGNORECASE)


class NotifyError(ValueError):
    """A target that cannot be used; ``field`` names it (``notify.0.url``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotifyTarget(BaseModel):
    """Where a run's notifications go, in which format, for which events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="`http(s)://…` for `json` and `slack`; `mailto:someone@example.org` for "
        "`email`.",
    )
    format: Format = Field(
        default="json",
        description="`json`: the snakedeck document; `slack`: a Slack incoming-webhook payload; "
        "`email`: a mail through the server's SMTP settings.",
    )
    events: list[EventName] = Field(
        default_factory=lambda: ["state"],
        min_length=1,
        max_length=2,
        description="`state` (each state change of the run) and/or `job_failed`.",
    )
    secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        repr=False,
        json_schema_extra={"writeOnly": True},
        description="Signs each body: `X-Snakedeck-Signature: sha256=<HMAC-SHA256 hex>`. "
        "Write-only: never shown in an answer.",
    )

    @field_validator("url")
    @classmethod
    def _url_fits_scheme(cls, url: str) -> str:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https", "mailto"):
            raise ValueError("use an http(s):// URL, or mailto:ADDRESS for e-mail")
        return url

    @model_validator(mode="after")
    def _format_fits_url(self) -> NotifyTarget:
        is_mail = self.url.lower().startswith("mailto:")
        if (self.format == "email") != is_mail:
            raise ValueError("an email target takes a mailto: URL, and only an email target does")
        if is_mail and not _MAILTO.match(self.url):
            raise ValueError("write an email target as mailto:someone@example.org (one address)")
        return self

    @property
    def target_id(self) -> str:
        """Stable per URL and format (the delivery log names targets by it, never by URL)."""
        return hashlib.sha256(f"{self.format}\n{self.url}".encode()).hexdigest()[:16]

    @property
    def address(self) -> str:
        match = _MAILTO.match(self.url)
        return match.group(1) if match else ""

    def public(self) -> dict[str, Any]:
        """The target as answers show it: no secret, and a URL cut to what names the site
        (Slack-style URLs carry their credential in the path, other URLs may in the query)."""
        return {
            "target_id": self.target_id,
            "url": shown_target(self.url, self.format),
            "format": self.format,
            "events": list(self.events),
            "signed": self.secret is not None,
        }


_TARGETS = TypeAdapter(list[NotifyTarget])


def shown_target(url: str, format: str) -> str:
    if format == "email":
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparsable URL>"
    path = "/…" if format == "slack" and parts.path not in ("", "/") else parts.path
    return f"{parts.scheme}://{host}{path}"


def parse_targets(raw: Any, field: str = "notify") -> list[NotifyTarget]:
    """Targets from JSON data (a list of objects); :class:`NotifyError` names what is wrong."""
    try:
        targets = _TARGETS.validate_python(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join([field, *(str(p) for p in first["loc"])])
        raise NotifyError(where, str(first["msg"])) from None
    if len(targets) > MAX_TARGETS:
        raise NotifyError(field, f"at most {MAX_TARGETS} targets")
    return targets


def targets_from_tag(value: str) -> list[NotifyTarget]:
    """The targets a :data:`NOTIFY_TAG` tag's value names: a JSON list, one JSON object, or a
    bare ``http(s)`` URL (a ``json`` target without a secret)."""
    text = value.strip()
    field = f"tags.{NOTIFY_TAG}"
    if text.startswith(("[", "{")):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise NotifyError(field, f"not JSON: {exc}") from None
        return parse_targets(raw if isinstance(raw, list) else [raw], field)
    return parse_targets([{"url": text}], field)


def check_targets(
    targets: Sequence[NotifyTarget], settings: Settings, field: str = "notify"
) -> None:
    """What a valid target must also meet on this server: a URL the URL-safety rules allow
    (resolved now), and SMTP settings for e-mail."""
    for i, target in enumerate(targets):
        if target.format == "email":
            if not settings.smtp_host:
                raise NotifyError(
                    f"{field}.{i}.format", "this server has no SMTP settings; e-mail is off"
                )
            continue
        try:
            check_url(target.url, settings.fetch_allow_private)
        except FetchError as exc:
            raise NotifyError(f"{field}.{i}.url", exc.message) from None


def default_targets(settings: Settings) -> list[NotifyTarget]:
    """The server's own targets (``SNAKEDECK_NOTIFY_TARGETS``), for every run."""
    if not settings.notify_targets.strip():
        return []
    try:
        return parse_targets(json.loads(settings.notify_targets), "SNAKEDECK_NOTIFY_TARGETS")
    except (ValueError, NotifyError) as exc:
        raise SettingsError(f"SNAKEDECK_NOTIFY_TARGETS: {exc}") from None


def declared_state(run_id: str, state: str, reason: str, *, epoch: int) -> tuple[str, Any]:
    """The routing key and event that tell the notifier of a state declared outside the run's
    event stream (the reaper's, for a lost runner). Its seq counts down from the top of the
    range by the claim's epoch, so each declaration has its own idempotency key and none is a
    seq the run's own events use."""
    from snakedeck.envelope import MAX_SEQ, run_state

    event = run_state(run_id, state, reason=reason)
    event["seq"] = MAX_SEQ - epoch
    return f"notify.{run_id}.run_state", event


# -- what is sent --------------------------------------------------------------------------------
def idempotency_key(run_id: str, seq: int) -> str:
    """One per state change (or job failure): the event's place in the run's history."""
    return f"{run_id}:{seq}"


def notification(event: Mapping[str, Any], run: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON document of one event (``run_state`` or ``job_error``) of a run."""
    data = event.get("data") or {}
    run = run or {}
    kind = EVENT_TYPES[str(event["type"])]
    doc: dict[str, Any] = {
        "v": DOCUMENT_VERSION,
        "event": kind,
        "idempotency_key": idempotency_key(str(event["run_id"]), int(event["seq"])),
        "run_id": event["run_id"],
        "seq": event["seq"],
        "time": event.get("ts"),
        "workflow": run.get("workflow"),
        "workflow_version": run.get("workflow_version"),
        "tags": dict(run.get("tags") or {}),
    }
    if kind == "state":
        doc["state"] = data.get("state")
        for name in ("reason", "exit_code"):
            if data.get(name) not in (None, ""):
                doc[name] = data[name]
    else:
        doc["state"] = run.get("state")
        doc["job"] = {
            "jobid": data.get("jobid"),
            "rule": data.get("rule_name") or data.get("rule"),
            "wildcards": data.get("wildcards"),
        }
    return doc


def body_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does (constant time), for tests and for the docs' example."""
    return hmac.compare_digest(sign(body, secret), header or "")


def summary_line(doc: Mapping[str, Any]) -> str:
    run = f"{doc.get('workflow') or 'run'} run {doc['run_id']}"
    if doc["event"] == "job_failed":
        job = doc.get("job") or {}
        return f"{run}: job {job.get('jobid')} ({job.get('rule')}) failed"
    text = f"{run} is {doc.get('state')}"
    if doc.get("reason"):
        text += f": {doc['reason']}"
    return text


def slack_payload(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook payload (``text`` for every client, one section
    block, and the document's fields as a context line)."""
    line = summary_line(doc)
    context = f"state `{doc.get('state')}` · seq {doc['seq']} · {doc.get('time')}"
    return {
        "text": line,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*snakedeck* {line}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def payload(doc: Mapping[str, Any], format: str) -> dict[str, Any]:
    return slack_payload(doc) if format == "slack" else dict(doc)


def email_message(doc: Mapping[str, Any], target: NotifyTarget, sender: str) -> Any:
    """The mail for an ``email`` target: the summary as subject, the document as its body."""
    from email.message import EmailMessage

    body = body_bytes(doc)
    message = EmailMessage()
    message["Subject"] = f"[snakedeck] {summary_line(doc)}"[:200]
    message["From"] = sender
    message["To"] = target.address
    message[IDEMPOTENCY_HEADER] = str(doc["idempotency_key"])
    message.set_content(f"{summary_line(doc)}\n\n{body.decode()}\n")
    return message
