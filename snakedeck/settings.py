"""Settings shared by every snakedeck process, read from ``SNAKEDECK_*`` environment variables.

A stdlib dataclass (not pydantic) because the Snakemake logger plugin imports it inside every
Snakemake start, and that import must stay cheap.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from snakedeck.executors import NAME_RE as EXECUTOR

PREFIX = "SNAKEDECK_"
RATE = re.compile(r"^\s*(off|\d+\s*(/|per)\s*(second|minute|hour|day)s?)\s*$", re.IGNORECASE)
ORIGIN = re.compile(r"^https?://[^/\s:]+(:\d{1,5})?$", re.IGNORECASE)


class SettingsError(ValueError):
    """A SNAKEDECK_* variable has a value that cannot be used."""


def _split_tokens(raw: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in raw.split(",") if t.strip())


@dataclass(frozen=True)
class Settings:
    amqp_url: str | None = None
    """RabbitMQ URL; unset means the in-process bus (standalone only)."""
    mongo_uri: str | None = None
    """MongoDB URI; unset means SQLite at ``data_dir/snakedeck.db``."""
    mongo_db: str = "snakedeck"
    data_dir: Path = Path(".snakedeck")
    workflows_dir: Path = Path("workflows")
    namespace: str = "snakedeck"
    """Prefix of every exchange and queue, so deployments (and test runs) never collide."""
    api_tokens: tuple[str, ...] = ()
    """Admin tokens. When any token is configured (here, in the token file or in the store),
    every request but the probes and the API document needs one (see ``public_read``)."""
    token_file: Path | None = None
    """Named tokens with roles, one ``name:role:sha256hex`` per line (hashes only), for
    deployments that do not keep tokens in the store."""
    public_read: bool = False
    """With tokens configured, let callers without a token read (runs, logs, feeds, the
    dashboard); writes still need one."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (``https://host[:port]``) besides the gateway's own that may write, open
    live feeds and use the REST API from a browser (CORS)."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names the gateway answers to; empty: the bound address and the localhost
    names (with a wildcard bind, also this machine's names); ``*``: any (no check)."""
    rate_submit: str = "30/minute"
    """Run submissions (and reruns) per token and gateway process, e.g. ``30/minute``;
    ``off`` for no limit."""
    rate_upload: str = "300/minute"
    """File registrations (uploads, URLs) per token and gateway process."""
    host: str = "127.0.0.1"
    port: int = 8000
    """The gateway's port; 0 lets the system pick a free one (it is logged)."""
    queue_type: str = "classic"
    """RabbitMQ queue type of the ``runs`` and ``persist`` queues: ``classic`` (one broker
    node) or ``quorum`` (replicated over a RabbitMQ cluster). A queue keeps the type it was
    declared with: changing it means deleting (draining) the two queues first."""
    max_runs: int = 2
    """How many runs one runner executes at once (the runs queue prefetch)."""
    cores: int = 2
    """``--cores`` given to each Snakemake run."""
    executor: str = ""
    """Snakemake executor for the runs' jobs (``slurm``, ``local``, …). Set, it wins over a
    workflow's own ``executor:`` (the site decides); empty: the workflow's, else jobs run on
    the runner's host. A workflow's own profile ``profiles/<executor>/`` is given to Snakemake
    as its workflow profile; without one, ``--executor <executor>`` with the plugin's
    defaults."""
    profile: Path | None = None
    """A Snakemake profile directory (``--profile``) for every run: the site's cluster
    settings (account, partition, default resources) under the workflow's own profile."""
    cancel_grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL when a run is cancelled."""
    ws_ping_interval: float = 25.0
    """Seconds between the gateway's pings on a plain WebSocket feed: a quiet feed (a store
    outage, a long job) stays open through proxies that close idle connections (keep it below
    theirs), and a client that stopped answering is closed."""
    heartbeat_interval: float = 5.0
    """Seconds between a runner's heartbeats (each renews its claims on its runs)."""
    claim_lease: float = 30.0
    """Seconds a runner's claim on a run holds without a heartbeat; a runner silent this long
    is lost, and the reaper declares its runs SYSTEM_ERROR (within a third more)."""
    orphan_grace: float = 90.0
    """Seconds a run's Snakemake goes on without any runner supervising it before it stops
    itself (longer than a claim's lease, so a restarted runner adopts it first)."""
    allow_attachments: bool = False
    """Run WES ``workflow_attachment`` bundles as private workflows. They are code uploaded by
    a client and executed on the runner's host: refused unless explicitly enabled, on the
    gateway (which takes them) and on each runner (which runs them) alike."""
    attachment_max_bytes: int = 8 * 1024 * 1024
    """Largest total size in bytes of one submission's ``workflow_attachment`` files."""
    attachment_max_files: int = 100
    """Most ``workflow_attachment`` files in one submission."""
    max_upload: int = 1024**3
    """Largest registered file in bytes, uploaded or fetched from a URL (413 beyond it)."""
    fetch_timeout: float = 60.0
    """Seconds a fetch of a URL may take in all (connect, redirects, body)."""
    fetch_allow_private: bool = False
    """Let ``POST /files {url}`` fetch from loopback/private addresses (tests, closed sites)."""
    log_stream_cap: int = 32 * 1024 * 1024
    """Bytes kept of each run or job log in the store; the oldest chunks go beyond it."""
    max_result: int = 2 * 1024**3
    """Largest result file a runner stores (a bigger one is listed, not stored)."""
    sample_interval: float = 1.0
    """Seconds between two samples of a run's processes (CPU, memory)."""
    notify_targets: str = field(default="", repr=False)
    """Default notify targets of every run, a JSON list of targets as ``POST /runs`` takes
    them (``[{"url": ..., "format": "json", "secret": ...}]``); checked at start."""
    notify_timeout: float = 10.0
    """Seconds one notification attempt may take (connect and answer)."""
    notify_max_attempts: int = 8
    """Attempts per notification and target before the notifier gives up (with back-off)."""
    smtp_host: str = ""
    """SMTP server for ``email`` notify targets; empty: e-mail targets are refused."""
    smtp_port: int = 25
    smtp_from: str = "snakedeck@localhost"
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The ``SNAKEDECK_*`` variables that give these settings back through :meth:`from_env`
        (only those that differ from the defaults), to start another process with them."""
        defaults = type(self)()
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value == getattr(defaults, f.name) or value is None:
                continue
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            env[PREFIX + f.name.upper()] = text
        return env

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        if not self.namespace or not all(c.isalnum() or c in "-_." for c in self.namespace):
            raise SettingsError(
                f"SNAKEDECK_NAMESPACE={self.namespace!r}: use letters, digits, '-', '_' or '.'"
            )
        if not 3 * self.heartbeat_interval <= self.claim_lease <= self.orphan_grace:
            raise SettingsError(
                "SNAKEDECK_CLAIM_LEASE must be at least three heartbeat intervals "
                f"({self.heartbeat_interval} s) and at most SNAKEDECK_ORPHAN_GRACE "
                f"({self.orphan_grace} s), got {self.claim_lease}"
            )
        if self.max_runs < 1:
            raise SettingsError(f"SNAKEDECK_MAX_RUNS must be at least 1, got {self.max_runs}")
        if self.max_upload < 1:
            raise SettingsError(f"SNAKEDECK_MAX_UPLOAD must be positive, got {self.max_upload}")
        if self.attachment_max_bytes < 1 or self.attachment_max_files < 1:
            raise SettingsError(
                "SNAKEDECK_ATTACHMENT_MAX_BYTES and SNAKEDECK_ATTACHMENT_MAX_FILES must be "
                f"positive, got {self.attachment_max_bytes} and {self.attachment_max_files}"
            )
        if self.fetch_timeout <= 0:
            raise SettingsError(
                f"SNAKEDECK_FETCH_TIMEOUT must be positive, got {self.fetch_timeout}"
            )
        for name in ("rate_submit", "rate_upload"):
            value = getattr(self, name)
            if not RATE.match(value):
                raise SettingsError(
                    f"SNAKEDECK_{name.upper()}={value!r}: use N/second, N/minute, N/hour, "
                    "N/day (e.g. 30/minute), or off"
                )
        for origin in self.allowed_origins:
            if not ORIGIN.match(origin):
                raise SettingsError(
                    f"SNAKEDECK_ALLOWED_ORIGINS: {origin!r} is not an origin; write "
                    "scheme://host[:port] (no path)"
                )
        if self.log_stream_cap < 1024 * 1024:
            raise SettingsError(
                f"SNAKEDECK_LOG_STREAM_CAP must be at least 1 MiB, got {self.log_stream_cap}"
            )
        if self.sample_interval <= 0:
            raise SettingsError(
                f"SNAKEDECK_SAMPLE_INTERVAL must be positive, got {self.sample_interval}"
            )
        if self.notify_timeout <= 0:
            raise SettingsError(
                f"SNAKEDECK_NOTIFY_TIMEOUT must be positive, got {self.notify_timeout}"
            )
        if self.notify_max_attempts < 1:
            raise SettingsError(
                f"SNAKEDECK_NOTIFY_MAX_ATTEMPTS must be at least 1, got {self.notify_max_attempts}"
            )
        if self.notify_targets.strip():
            try:
                targets = json.loads(self.notify_targets)
            except ValueError as exc:
                raise SettingsError(f"SNAKEDECK_NOTIFY_TARGETS is not JSON: {exc}") from None
            if not isinstance(targets, list):
                raise SettingsError("SNAKEDECK_NOTIFY_TARGETS must be a JSON list of targets")
        if self.queue_type not in ("classic", "quorum"):
            raise SettingsError(f"SNAKEDECK_QUEUE_TYPE={self.queue_type!r}: use classic or quorum")
        if self.executor and not EXECUTOR.match(self.executor):
            raise SettingsError(
                f"SNAKEDECK_EXECUTOR={self.executor!r}: name a Snakemake executor plugin "
                "(letters, digits and '-', e.g. slurm)"
            )
        if not 0 <= self.port < 65536:
            raise SettingsError(
                f"SNAKEDECK_PORT must be a TCP port (0: any free one), got {self.port}"
            )

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "snakedeck.db"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


def _convert(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind in ("Path", "Path | None"):
            return Path(raw)
        if kind.startswith("tuple"):
            return _split_tokens(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
