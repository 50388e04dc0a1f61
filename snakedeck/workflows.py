"""The workflow registry: one folder per workflow under ``WORKFLOWS_DIR``, each holding a
``Snakefile`` and a ``workflow.yaml``::

    name, version, description
    config_schema: a JSON Schema the run's config must satisfy
    requires: [programs that must be on PATH]       # else the workflow is "unavailable"
    inputs:                                         # registered files a run is given
      - name: samples                               # config["inputs"]["samples"] in Snakemake
        description: ...
        required: true                              # default true
        kinds: [table]                              # fasta, fastq, table, config, text, other
        formats: [csv, tsv, xlsx]                   # optional, e.g. fasta, fastq.gz, txt
        table:                                      # optional: a sample sheet's schema
          min_rows: 1
          columns:
            - {name: sample, type: string, pattern: "^[A-Za-z0-9_-]+$", unique: true}
            - {name: fastq1, file: {kind: fastq}}   # cells are registered file ids
            - {name: fastq2, file: {kind: fastq}, required: false}
    results:                                        # what a run makes (stored, served)
      - {path: hits.tsv, kind: table, description: ...}
    report: true                                    # also Snakemake's HTML report (--report)
    executor: slurm                                 # optional: a Snakemake executor plugin

``executor:`` names the Snakemake executor of the workflow's runs (``local``, or a plugin such
as ``slurm``; its options go in the workflow's profile ``profiles/<executor>/config.yaml``). A
runner whose ``SNAKEDECK_EXECUTOR`` is set uses its own instead (the site decides); a runner
without the plugin ends the run SYSTEM_ERROR naming the package to install.

The gateway lists and describes workflows and validates a submitted ``config`` here before a run
is queued; the runner resolves the Snakefile of a queued run here. Names are restricted to
``[A-Za-z0-9_-]`` so a name can never escape the workflows directory.
"""

from __future__ import annotations

import copy
import logging
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from snakedeck import executors, filekinds, tables
from snakedeck.documents import WorkflowDoc

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFINITION_FILE = "workflow.yaml"
SNAKEFILE = "Snakefile"
INPUT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
PROGRAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
RESULT_KINDS: Final = ("table", "text", "image", "vcf", "html", "other")


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
class InputSpec:
    """One declared input: a registered file of one of ``kinds`` (and ``formats``)."""

    name: str
    description: str = ""
    required: bool = True
    kinds: tuple[str, ...] = ()
    """Empty: any kind."""
    formats: tuple[str, ...] = ()
    """Empty: any format of the kinds."""
    table: tables.TableSchema | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "required": self.required,
            "kinds": list(self.kinds),
            "formats": list(self.formats),
        }
        if self.table is not None:
            out["table"] = self.table.to_dict()
        return out


@dataclass(frozen=True)
class ResultSpec:
    path: str
    """A path or glob relative to the run's work directory."""
    kind: str
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "description": self.description}


@dataclass(frozen=True)
class Workflow:
    name: str
    version: str
    description: str
    config_schema: dict[str, Any] = field(hash=False)
    inputs: tuple[InputSpec, ...]
    snakefile: Path
    directory: Path
    requires: tuple[str, ...] = ()
    results: tuple[ResultSpec, ...] = ()
    report: bool = False
    """After a COMPLETE run, make Snakemake's HTML report (``--report``) and store it."""
    executor: str | None = None
    """The Snakemake executor its runs ask for (``slurm``, …); ``None``: the runner's."""

    def to_dict(self) -> WorkflowDoc:
        """The public description (no server paths), as the API shows it."""
        missing = self.missing_programs()
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "config_schema": copy.deepcopy(self.config_schema),
            "inputs": [i.to_dict() for i in self.inputs],
            "results": [r.to_dict() for r in self.results],
            "report": self.report,
            "executor": self.executor,
            "requires": list(self.requires),
            "available": not missing,
            "unavailable_reason": unavailable_reason(missing),
        }

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def missing_programs(self) -> list[str]:
        """Required programs that are not on this machine's PATH."""
        return [p for p in self.requires if shutil.which(p) is None]

    def defaults(self) -> dict[str, Any]:
        """The configuration a run gets when it sets nothing."""
        return _fill_defaults(self.config_schema, {})


def unavailable_reason(missing: list[str]) -> str | None:
    if not missing:
        return None
    return f"needs {', '.join(missing)}, not installed on this server (not found on PATH)"


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


PRIVATE_NAME: Final = "attachment"
"""The name of every private workflow (a WES attachment bundle): never a registered one's
business, since the run records where its workflow came from (``workflow_source``)."""


def load_bundle(directory: Path, entry: str = SNAKEFILE) -> Workflow:
    """A private workflow: the folder a run's attachments were written to, ``entry`` its
    Snakefile. Its ``workflow.yaml``, if it has one, is read as a registered workflow's is (its
    name is not checked: a bundle has no registry name); without one it has no config schema,
    no registered inputs, no declared results. Problems name files relative to the folder."""
    directory = Path(directory).resolve()
    snakefile = (directory / entry).resolve()
    if not snakefile.is_relative_to(directory) or not snakefile.is_file():
        raise WorkflowDefinitionError(Path(entry), "the Snakefile is not among the attachments")
    if not (directory / DEFINITION_FILE).is_file():
        return Workflow(
            name=PRIVATE_NAME,
            version="0",
            description="a private workflow, attached to its run",
            config_schema={"type": "object"},
            inputs=(),
            snakefile=snakefile,
            directory=directory,
        )
    try:
        return load_workflow(directory, snakefile=entry, private=True)
    except WorkflowDefinitionError as exc:
        raise WorkflowDefinitionError(Path(DEFINITION_FILE), exc.problem) from None


def load_workflow(
    directory: Path, *, snakefile: str = SNAKEFILE, private: bool = False
) -> Workflow:
    """Read and check one workflow folder; every problem names the file it is in."""
    import yaml
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    directory = Path(directory).resolve()
    definition = directory / DEFINITION_FILE
    snakefile_path = directory / snakefile

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
    name = PRIVATE_NAME if private else raw.get("name", directory.name)
    if name != directory.name and not private:
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
    raw_inputs = raw.get("inputs") or []
    if not isinstance(raw_inputs, list) or not all(
        isinstance(i, dict) and isinstance(i.get("name"), str) for i in raw_inputs
    ):
        raise broken("inputs must be a list of mappings, each with a name")
    try:
        inputs = tuple(_input_spec(i) for i in raw_inputs)
        requires = _requires(raw.get("requires"))
        results = tuple(_result_spec(r) for r in _list(raw.get("results"), "results"))
        executor = _executor(raw.get("executor"))
    except ValueError as exc:
        raise broken(str(exc)) from None
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise broken("two inputs have the same name")
    if not snakefile_path.is_file():
        raise broken(f"no {snakefile} beside it")
    report = raw.get("report", False)
    if not isinstance(report, bool):
        raise broken("report must be true or false")
    unknown = set(raw) - {
        "name",
        "version",
        "description",
        "config_schema",
        "inputs",
        "requires",
        "results",
        "report",
        "executor",
    }
    if unknown:
        raise broken(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    return Workflow(
        name=name,
        version=str(version),
        description=description.strip(),
        config_schema=schema,
        inputs=inputs,
        snakefile=snakefile_path,
        directory=directory,
        requires=requires,
        results=results,
        report=report,
        executor=executor,
    )


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = _list(value, what)
    if not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(items)


def _input_spec(raw: dict[str, Any]) -> InputSpec:
    name = raw["name"]
    if not INPUT_NAME_RE.match(name):
        raise ValueError(
            f"input name {name!r} must start with a letter and use letters, digits and '_'"
        )
    unknown = set(raw) - {"name", "description", "required", "kinds", "formats", "table"}
    if unknown:
        raise ValueError(f"input {name!r} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"input {name!r}: description must be a string")
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise ValueError(f"input {name!r}: required must be true or false")
    kinds = _strings(raw.get("kinds"), f"input {name!r}: kinds")
    bad = [k for k in kinds if k not in filekinds.KINDS]
    if bad:
        raise ValueError(f"input {name!r}: kinds {bad} are not among {', '.join(filekinds.KINDS)}")
    formats = _strings(raw.get("formats"), f"input {name!r}: formats")
    table = None
    if raw.get("table") is not None:
        try:
            table = tables.parse_schema(raw["table"], filekinds.KINDS)
        except ValueError as exc:
            raise ValueError(f"input {name!r}: {exc}") from None
        if kinds and kinds != ("table",):
            raise ValueError(f"input {name!r} has a table schema, so its kind is table")
        kinds = ("table",)
    return InputSpec(
        name=name,
        description=" ".join(description.split()),
        required=required,
        kinds=kinds,
        formats=formats,
        table=table,
    )


def _requires(value: Any) -> tuple[str, ...]:
    programs = _strings(value, "requires")
    for program in programs:
        if not PROGRAM_RE.match(program):
            raise ValueError(f"requires: {program!r} is not a program name (no paths)")
    return programs


def _executor(value: Any) -> str | None:
    """A workflow's ``executor:``: a plugin name (it becomes ``--executor`` and a module name),
    or ``local``; never ``dryrun``/``touch``, which would end a run COMPLETE without running
    its jobs."""
    if value is None:
        return None
    if not isinstance(value, str) or not executors.NAME_RE.match(value):
        raise ValueError(
            f"executor {value!r} must name a Snakemake executor plugin "
            "(lowercase letters, digits and '-', starting with a letter, e.g. slurm)"
        )
    if value in executors.BUILT_IN and value != executors.LOCAL:
        raise ValueError(f"executor {value!r} does not run the jobs: use local or a plugin")
    return value


def _result_spec(raw: Any) -> ResultSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or not raw["path"]:
        raise ValueError("each result needs a path")
    path = raw["path"]
    if path.startswith(("/", "\\")) or ".." in Path(path).parts:
        raise ValueError(f"result path {path!r} must stay inside the run's work directory")
    kind = raw.get("kind", "other")
    if kind not in RESULT_KINDS:
        raise ValueError(f"result {path!r}: kind must be one of {', '.join(RESULT_KINDS)}")
    unknown = set(raw) - {"path", "kind", "description"}
    if unknown:
        raise ValueError(f"result {path!r} has unknown keys: {sorted(map(str, unknown))}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"result {path!r}: description must be a string")
    return ResultSpec(path, kind, " ".join(description.split()))


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
