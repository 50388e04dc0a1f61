"""The workflow registry: one folder per workflow under ``WORKFLOWS_DIR``, each holding a
``Snakefile`` and a ``workflow.yaml`` (name, version, description, config JSON Schema, inputs).

The gateway lists and describes workflows and validates a submitted ``config`` here before a run
is queued; the runner resolves the Snakefile of a queued run here. Names are restricted to
``[A-Za-z0-9_-]`` so a name can never escape the workflows directory.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFINITION_FILE = "workflow.yaml"
SNAKEFILE = "Snakefile"


class WorkflowError(Exception):
    """Base of the registry's errors."""


class UnknownWorkflow(WorkflowError, LookupError):
    """No registered workflow has this name (or the name is not a safe workflow name)."""

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__(f"unknown workflow {name!r}")


class WorkflowDefinitionError(WorkflowError):
    """A workflow folder is broken (unreadable or invalid ``workflow.yaml``, no Snakefile)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ConfigInvalid(WorkflowError, ValueError):
    """A run configuration does not match the workflow's schema.

    ``errors`` is a list of ``{"field": "a.b", "message": "..."}``; ``field`` is the dotted path
    of the offending value ("" for the configuration as a whole).
    """

    def __init__(self, workflow: str, errors: list[dict[str, str]]) -> None:
        self.workflow = workflow
        self.errors = errors
        listed = "; ".join(f"{e['field'] or '(config)'}: {e['message']}" for e in errors)
        super().__init__(f"invalid config for workflow {workflow!r}: {listed}")


@dataclass(frozen=True)
class Workflow:
    name: str
    version: str
    description: str
    config_schema: dict[str, Any] = field(hash=False)
    inputs: list[dict[str, Any]] = field(hash=False)
    snakefile: Path
    directory: Path

    def to_dict(self) -> dict[str, Any]:
        """The public description (no server paths), as the API shows it."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "config_schema": copy.deepcopy(self.config_schema),
            "inputs": copy.deepcopy(self.inputs),
        }

    def defaults(self) -> dict[str, Any]:
        """The configuration a run gets when it sets nothing."""
        return _fill_defaults(self.config_schema, {})


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name))


class WorkflowRegistry:
    """Workflows found under ``workflows_dir``; definitions are re-read when their file changes."""

    def __init__(self, workflows_dir: str | Path) -> None:
        self.workflows_dir = Path(workflows_dir)
        self._cache: dict[str, tuple[tuple[float, float], Workflow]] = {}
        self._lock = threading.Lock()

    def list(self, *, strict: bool = True) -> list[Workflow]:
        """Every registered workflow, by name. A broken definition raises
        :class:`WorkflowDefinitionError`, or with ``strict=False`` is logged and left out."""
        out: list[Workflow] = []
        if not self.workflows_dir.is_dir():
            return out
        for child in sorted(self.workflows_dir.iterdir()):
            if not (child.is_dir() and is_safe_name(child.name)):
                continue
            if not (child / DEFINITION_FILE).is_file():
                continue
            try:
                out.append(self._load(child.name))
            except WorkflowDefinitionError as exc:
                if strict:
                    raise
                log.warning("skipping broken workflow: %s", exc)
        return out

    def get(self, name: str) -> Workflow:
        if not is_safe_name(name):
            raise UnknownWorkflow(name)
        directory = self.workflows_dir / name
        if not (directory / DEFINITION_FILE).is_file():
            raise UnknownWorkflow(name)
        return self._load(name)

    def validate_config(
        self, name_or_workflow: str | Workflow, config: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Return ``config`` with the schema's defaults filled in, or raise :class:`ConfigInvalid`
        listing every problem with the field it concerns."""
        wf = (
            name_or_workflow
            if isinstance(name_or_workflow, Workflow)
            else self.get(name_or_workflow)
        )
        return validate_config(wf, config)

    # -- loading ------------------------------------------------------------------------------
    def _load(self, name: str) -> Workflow:
        directory = self.workflows_dir / name
        definition = directory / DEFINITION_FILE
        snakefile = directory / SNAKEFILE
        try:
            stamp = (definition.stat().st_mtime, snakefile.stat().st_mtime)
        except FileNotFoundError as exc:
            if not definition.exists():
                raise UnknownWorkflow(name) from None
            raise WorkflowDefinitionError(definition, f"no {SNAKEFILE} beside it") from exc
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        wf = load_workflow(directory)
        with self._lock:
            self._cache[name] = (stamp, wf)
        return wf


def load_workflow(directory: Path) -> Workflow:
    """Read and check one workflow folder; every problem names the file it is in."""
    import yaml
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    directory = Path(directory).resolve()
    definition = directory / DEFINITION_FILE
    snakefile = directory / SNAKEFILE

    def broken(problem: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(definition, problem)

    try:
        raw = yaml.safe_load(definition.read_text(encoding="utf-8"))
    except OSError as exc:
        raise broken(f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise broken(f"not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise broken(f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise broken("must be a YAML mapping with name, version, description, config_schema")
    name = raw.get("name", directory.name)
    if name != directory.name:
        raise broken(f"name {name!r} must equal the folder name {directory.name!r}")
    if not is_safe_name(name):
        raise broken(f"name {name!r} may only use letters, digits, '_' and '-'")
    version = raw.get("version", "0")
    if not isinstance(version, (str, int, float)) or isinstance(version, bool):
        raise broken(f"version must be a string, got {version!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise broken("description must be a string")
    schema = raw.get("config_schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise broken("config_schema must be a mapping (a JSON Schema object)")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(root)"
        raise broken(
            f"config_schema is not a valid JSON Schema at {where}: {exc.message}"
        ) from None
    inputs = raw.get("inputs") or []
    if not isinstance(inputs, list) or not all(
        isinstance(i, dict) and isinstance(i.get("name"), str) for i in inputs
    ):
        raise broken("inputs must be a list of mappings, each with a name")
    if not snakefile.is_file():
        raise broken(f"no {SNAKEFILE} beside it")
    unknown = set(raw) - {"name", "version", "description", "config_schema", "inputs"}
    if unknown:
        raise broken(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    return Workflow(
        name=name,
        version=str(version),
        description=description.strip(),
        config_schema=schema,
        inputs=inputs,
        snakefile=snakefile,
        directory=directory,
    )


def validate_config(workflow: Workflow, config: dict[str, Any] | None) -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigInvalid(workflow.name, [{"field": "", "message": "config must be an object"}])
    filled = _fill_defaults(workflow.config_schema, config)
    validator = Draft202012Validator(workflow.config_schema)
    errors = [
        _describe(err)
        for err in sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.path)))
    ]
    if errors:
        raise ConfigInvalid(workflow.name, errors)
    return filled


def _fill_defaults(schema: Any, value: Any) -> Any:
    """A copy of ``value`` with every missing property that has a ``default`` set to it,
    recursively through nested object properties."""
    value = copy.deepcopy(value)
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    for prop, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if prop not in value and "default" in sub:
            value[prop] = copy.deepcopy(sub["default"])
        if prop in value:
            value[prop] = _fill_defaults(sub, value[prop])
    return value


def _describe(err: Any) -> dict[str, str]:
    path = [str(p) for p in err.absolute_path]
    if err.validator == "required":
        missing = _quoted_name(err.message)
        if missing is not None:
            path.append(missing)
    elif err.validator == "additionalProperties":
        names = re.findall(r"'([^']*)'", err.message)
        if len(names) == 1:
            path.append(names[0])
    return {"field": ".".join(path), "message": err.message}


def _quoted_name(message: str) -> str | None:
    m = re.match(r"^'([^']*)' is a required property", message)
    return m.group(1) if m else None
