"""The workflow registry: listing, safe names, broken definitions, config defaults and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from snakedeck.workflows import (
    ConfigInvalid,
    UnknownWorkflow,
    Workflow,
    WorkflowDefinitionError,
    WorkflowRegistry,
)

REPO_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


@pytest.fixture
def registry() -> WorkflowRegistry:
    return WorkflowRegistry(REPO_WORKFLOWS)


def make_workflow(root: Path, name: str, yaml_text: str, *, snakefile: bool = True) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "workflow.yaml").write_text(yaml_text)
    if snakefile:
        (d / "Snakefile").write_text("rule all:\n    shell: 'true'\n")
    return d


def test_demo_is_listed_and_described(registry: WorkflowRegistry) -> None:
    names = [w.name for w in registry.list()]
    assert "demo" in names
    demo = registry.get("demo")
    assert isinstance(demo, Workflow)
    assert demo.snakefile == (REPO_WORKFLOWS / "demo" / "Snakefile").resolve()
    assert demo.directory == (REPO_WORKFLOWS / "demo").resolve()
    assert demo.version and demo.description
    assert demo.config_schema["properties"]["samples"]["default"] == 6
    public = demo.to_dict()
    assert set(public) == {
        "name",
        "version",
        "description",
        "config_schema",
        "inputs",
        "results",
        "report",
        "executor",
        "requires",
        "available",
        "unavailable_reason",
    }
    assert "snakefile" not in str(public)
    assert public["available"] is True and public["unavailable_reason"] is None
    (extra,) = public["inputs"]
    assert extra["name"] == "extra" and extra["required"] is False


def test_demo_defaults_are_filled(registry: WorkflowRegistry) -> None:
    config = registry.validate_config("demo", {"samples": 3})
    assert config["samples"] == 3
    assert config["sleep"] == 0.3
    assert config["mode"] == "lines"
    assert "fail_sample" not in config
    assert registry.validate_config("demo", None) == registry.get("demo").defaults()


def test_validate_does_not_mutate_input(registry: WorkflowRegistry) -> None:
    given = {"samples": 2}
    registry.validate_config(registry.get("demo"), given)
    assert given == {"samples": 2}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"samples": 0}, "samples"),
        ({"samples": 501}, "samples"),
        ({"samples": "six"}, "samples"),
        ({"sleep": -1}, "sleep"),
        ({"mode": "chars"}, "mode"),
        ({"fail_sample": "../x"}, "fail_sample"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_config_names_the_field(
    registry: WorkflowRegistry, config: dict, field: str
) -> None:
    with pytest.raises(ConfigInvalid) as info:
        registry.validate_config("demo", config)
    fields = [e["field"] for e in info.value.errors]
    assert field in fields
    assert all(e["message"] for e in info.value.errors)
    assert field in str(info.value)


def test_every_error_is_reported(registry: WorkflowRegistry) -> None:
    with pytest.raises(ConfigInvalid) as info:
        registry.validate_config("demo", {"samples": 0, "mode": "x"})
    assert {e["field"] for e in info.value.errors} == {"samples", "mode"}


def test_nested_required_and_defaults(tmp_path: Path) -> None:
    make_workflow(
        tmp_path,
        "nested",
        """
name: nested
version: 2
description: nested config
config_schema:
  type: object
  required: [ref]
  properties:
    ref:
      type: object
      required: [path]
      properties:
        path: {type: string}
        build: {type: string, default: hg38}
""",
    )
    reg = WorkflowRegistry(tmp_path)
    assert reg.get("nested").version == "2"
    assert reg.validate_config("nested", {"ref": {"path": "x"}}) == {
        "ref": {"path": "x", "build": "hg38"}
    }
    with pytest.raises(ConfigInvalid) as info:
        reg.validate_config("nested", {"ref": {}})
    assert info.value.errors[0]["field"] == "ref.path"
    with pytest.raises(ConfigInvalid) as info:
        reg.validate_config("nested", {})
    assert info.value.errors[0]["field"] == "ref"
    with pytest.raises(ConfigInvalid):
        reg.validate_config("nested", [1])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["nope", "../demo", "demo/..", "", ".", "a b", "demo\x00", 5])
def test_unknown_or_unsafe_names(registry: WorkflowRegistry, name: object) -> None:
    with pytest.raises(UnknownWorkflow):
        registry.get(name)  # type: ignore[arg-type]
    with pytest.raises(UnknownWorkflow):
        registry.validate_config(name, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "snakefile", "problem"),
    [
        ("name: [unclosed", True, "not valid YAML"),
        ("- just\n- a list\n", True, "YAML mapping"),
        ("name: other\n", True, "must equal the folder name"),
        ("config_schema: {type: 12}\n", True, "not a valid JSON Schema"),
        ("inputs: {a: 1}\n", True, "inputs must be a list"),
        ("description: ok\n", False, "no Snakefile"),
        ("colour: blue\n", True, "unknown keys: colour"),
        ("inputs: [{name: 1x}]\n", True, "must start with a letter"),
        ("inputs: [{name: a, kinds: [pdf]}]\n", True, "kinds ['pdf'] are not among"),
        ("inputs: [{name: a}, {name: a}]\n", True, "same name"),
        ("inputs: [{name: a, colour: 1}]\n", True, "unknown keys: colour"),
        ("inputs: [{name: a, table: {columns: [{type: string}]}}]\n", True, "needs a name"),
        (
            "inputs: [{name: a, table: {columns: [{name: x, type: date}]}}]\n",
            True,
            "type must be one of",
        ),
        (
            "inputs: [{name: a, table: {columns: [{name: x, pattern: '(('}]}}]\n",
            True,
            "bad pattern",
        ),
        (
            "inputs: [{name: a, table: {columns: [{name: x, file: {kind: pdf}}]}}]\n",
            True,
            "file needs kind",
        ),
        (
            "inputs: [{name: a, kinds: [fasta], table: {columns: [{name: x}]}}]\n",
            True,
            "its kind is table",
        ),
        ("requires: [/bin/sh]\n", True, "not a program name"),
        ("requires: sh\n", True, "requires must be a list"),
        ("results: [{path: ../x}]\n", True, "inside the run's work directory"),
        ("results: [{path: /etc/x}]\n", True, "inside the run's work directory"),
        ("results: [{path: x, kind: movie}]\n", True, "kind must be one of"),
        ("executor: SLURM\n", True, "must name a Snakemake executor plugin"),
        ("executor: '../x'\n", True, "must name a Snakemake executor plugin"),
        ("executor: 'slurm --x'\n", True, "must name a Snakemake executor plugin"),
        ("executor: [slurm]\n", True, "must name a Snakemake executor plugin"),
        ("executor: dryrun\n", True, "does not run the jobs"),
    ],
)
def test_broken_definition_names_the_file(
    tmp_path: Path, text: str, snakefile: bool, problem: str
) -> None:
    d = make_workflow(tmp_path, "broken", text, snakefile=snakefile)
    reg = WorkflowRegistry(tmp_path)
    with pytest.raises(WorkflowDefinitionError) as info:
        reg.get("broken")
    assert str(d / "workflow.yaml") in str(info.value) or str(d) in str(info.value)
    assert problem in str(info.value)
    with pytest.raises(WorkflowDefinitionError):
        reg.list()
    assert reg.list(strict=False) == []


def test_list_skips_non_workflow_folders(tmp_path: Path) -> None:
    make_workflow(tmp_path, "good", "description: fine\n")
    (tmp_path / "not-a-workflow").mkdir()
    (tmp_path / "README.md").write_text("hi")
    reg = WorkflowRegistry(tmp_path)
    assert [w.name for w in reg.list()] == ["good"]
    assert WorkflowRegistry(tmp_path / "missing").list() == []


def test_definition_is_reloaded_when_changed(tmp_path: Path) -> None:
    import os

    d = make_workflow(tmp_path, "wf", "version: '1'\n")
    reg = WorkflowRegistry(tmp_path)
    assert reg.get("wf").version == "1"
    (d / "workflow.yaml").write_text("version: '2'\n")
    st = (d / "workflow.yaml").stat()
    os.utime(d / "workflow.yaml", (st.st_atime, st.st_mtime + 5))
    assert reg.get("wf").version == "2"


def test_inputs_requires_and_results_are_declared(tmp_path: Path) -> None:
    make_workflow(
        tmp_path,
        "wf",
        """
requires: [sh, surely-not-installed-anywhere]
inputs:
  - name: samples
    description: the sheet
    table:
      columns:
        - {name: sample, pattern: "^[a-z]+$", unique: true}
        - {name: reads, file: {kind: fastq}}
        - {name: depth, type: integer, required: false}
  - name: ref
    kinds: [fasta]
    formats: [fasta, fasta.gz]
    required: false
results:
  - {path: out/*.tsv, kind: table}
""",
    )
    wf = WorkflowRegistry(tmp_path).get("wf")
    assert wf.missing_programs() == ["surely-not-installed-anywhere"]
    public = wf.to_dict()
    assert public["available"] is False
    assert "surely-not-installed-anywhere" in public["unavailable_reason"]
    samples, ref = public["inputs"]
    assert samples["kinds"] == ["table"] and samples["required"] is True
    assert [c["name"] for c in samples["table"]["columns"]] == ["sample", "reads", "depth"]
    assert samples["table"]["columns"][1]["file"] == {"kinds": ["fastq"]}
    assert ref == {
        "name": "ref",
        "description": "",
        "required": False,
        "kinds": ["fasta"],
        "formats": ["fasta", "fasta.gz"],
    }
    assert public["results"] == [{"path": "out/*.tsv", "kind": "table", "description": ""}]
    assert wf.input("samples").table.file_columns() == {"reads": ("fastq",)}


def test_the_shipped_analyses_declare_their_inputs_and_programs(registry) -> None:
    blast = registry.get("blast").to_dict()
    assert blast["requires"] == ["makeblastdb", "blastn", "blastp"]
    assert [i["name"] for i in blast["inputs"]] == ["queries", "reference"]
    assert {r["path"] for r in blast["results"]} >= {"hits.tsv"}
    vc = registry.get("variant-calling")
    sheet = vc.input("samples")
    assert sheet is not None and sheet.table is not None
    assert sheet.table.file_columns() == {"fastq1": ("fastq",), "fastq2": ("fastq",)}
    assert vc.requires == ("bwa", "samtools", "bcftools")
    assert registry.validate_config("blast", {})["program"] == "blastn"


def test_a_workflow_may_choose_its_executor(tmp_path: Path, registry: WorkflowRegistry) -> None:
    make_workflow(tmp_path, "cluster", "executor: slurm\n")
    make_workflow(tmp_path, "here", "executor: local\n")
    reg = WorkflowRegistry(tmp_path)
    assert reg.get("cluster").executor == "slurm"
    assert reg.get("cluster").to_dict()["executor"] == "slurm"
    assert reg.get("here").executor == "local"
    assert registry.get("demo").executor is None  # the demo runs where the runner says
    assert registry.get("demo").to_dict()["executor"] is None
