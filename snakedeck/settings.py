"""Settings shared by every snakedeck process, read from ``SNAKEDECK_*`` environment variables.

A stdlib dataclass (not pydantic) because the Snakemake logger plugin imports it inside every
Snakemake start, and that import must stay cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PREFIX = "SNAKEDECK_"


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
    """When non-empty, every write and every socket connect needs one of these tokens."""
    host: str = "127.0.0.1"
    port: int = 8000
    max_runs: int = 2
    """How many runs one runner executes at once (the runs queue prefetch)."""
    cores: int = 2
    """``--cores`` given to each Snakemake run."""
    cancel_grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL when a run is cancelled."""
    heartbeat_interval: float = 5.0
    allow_workflow_attachment: bool = False
    """WES ``workflow_attachment`` is arbitrary code: refused unless explicitly enabled."""
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

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        if not self.namespace or not all(c.isalnum() or c in "-_." for c in self.namespace):
            raise SettingsError(
                f"SNAKEDECK_NAMESPACE={self.namespace!r}: use letters, digits, '-', '_' or '.'"
            )
        if self.max_runs < 1:
            raise SettingsError(f"SNAKEDECK_MAX_RUNS must be at least 1, got {self.max_runs}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"SNAKEDECK_PORT must be a TCP port, got {self.port}")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "snakedeck.db"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"


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
        if kind == "Path":
            return Path(raw)
        if kind.startswith("tuple"):
            return _split_tokens(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
