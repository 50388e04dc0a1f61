"""The launch form's pure parts: where each problem of a refused submit is shown, how a config
file's values fill the form, and what each input's picker lists and says."""

from __future__ import annotations

from pathlib import Path

from dashboard import schema_form
from dashboard.pages.launch import errors, inputs
from snakedeck.workflows import WorkflowRegistry

REPO = Path(__file__).resolve().parents[2]


def test_each_problem_goes_to_the_part_of_the_form_it_names():
    placed = errors.place(
        [
            {"field": "config.evalue", "message": "must be more than 0"},
            {"field": "config.opts.depth", "message": "must be an integer"},
            {"field": "config", "message": "unknown key x"},
            {"field": "inputs.reference", "message": "is required"},
            {"field": "inputs.samples.row 3.sample", "message": "does not match"},
            {"field": "inputs.samples.row 4.fastq1", "message": "is empty"},
            {"field": "inputs.samples.fastq2", "message": "missing column"},
            {"field": "inputs.extra", "message": "no input named extra"},
            {"field": "config_file", "message": "is text, not a config file"},
            {"field": "tags.bad key", "message": "tag names use letters"},
            {"field": "workflow", "message": "is unavailable"},
        ],
        fields=["evalue", "opts"],
        inputs=["reference", "samples"],
    )
    assert placed.fields == {"evalue": "must be more than 0", "opts": "must be an integer"}
    assert placed.inputs == {"reference": "is required"}
    assert placed.sheets == {
        "samples": [
            "row 3, column sample: does not match",
            "row 4, column fastq1: is empty",
            "column fastq2: missing column",
        ]
    }
    assert placed.input_error("samples") == "3 problems in this sheet (below)"
    assert placed.input_error("reference") == "is required"
    assert placed.config_file == "is text, not a config file"
    assert placed.tags == "bad key: tag names use letters"
    assert placed.workflow == "is unavailable"
    # What names no part of this form is said in the form's own alert.
    assert placed.general == ["config: unknown key x", "inputs.extra: no input named extra"]


def test_nothing_placed_is_false_and_one_sheet_problem_reads_singular():
    assert not errors.place([], fields=[], inputs=[])
    one = errors.place(
        [{"field": "inputs.s.row 2.a", "message": "x"}, {"field": "inputs.s", "message": "y"}],
        fields=[],
        inputs=["s"],
    )
    assert one and one.input_error("s") == "y; 1 problem in this sheet (below)"
    assert errors.sheet_list(None) is None


def test_a_config_file_fills_each_field_as_its_input_holds_it():
    schema = {
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": "number"},
            "mode": {"enum": ["a", "b"]},
            "name": {"type": "string"},
            "on": {"type": "boolean"},
            "lanes": {"type": "array", "items": {"type": "integer"}},
            "modes": {"type": "array", "items": {"enum": ["a", "b"]}},
            "opts": {"type": "object"},
        }
    }
    specs = {s.name: s for s in schema_form.fields_from_schema(schema)}
    config = {
        "n": 3,
        "x": 1e-5,
        "mode": "b",
        "name": "liver",
        "on": True,
        "lanes": [1, 2],
        "modes": ["a"],
        "opts": {"k": 1},
    }
    shown = {k: schema_form.form_value(specs[k], v) for k, v in config.items()}
    assert shown == {
        "n": 3,
        "x": 1e-5,
        "mode": '"b"',
        "name": "liver",
        "on": True,
        "lanes": ["1", "2"],
        "modes": ['"a"'],
        "opts": '{\n  "k": 1\n}',
    }
    # Read back, the form gives the file's config again.
    back, problems = schema_form.config_from_values(list(specs.values()), shown)
    assert problems == {} and back == config
    assert schema_form.form_value(specs["mode"], None) is None
    assert schema_form.form_value(specs["n"], None) == ""
    assert schema_form.form_value(specs["n"], "7") == "7"  # a string is shown, then refused


def test_each_shipped_input_lists_the_files_that_fit_and_says_which():
    registry = WorkflowRegistry(REPO / "workflows")

    def spec(workflow: str, name: str) -> dict:
        found = registry.get(workflow).input(name)
        assert found is not None
        return found.to_dict()

    queries = spec("blast", "queries")
    assert inputs.picker_kinds(queries) == ["fasta"] and inputs.upload_kind(queries) == "fasta"
    assert inputs.accepts_text(queries) == "fasta"
    samples = spec("variant-calling", "samples")
    assert inputs.picker_kinds(samples) == ["table"] and inputs.upload_kind(samples) == "table"
    assert inputs.accepts_text(samples) == "table: csv, tsv, xlsx"
    assert inputs.sheet_hint(samples) == (
        "columns: sample, fastq1 (fastq file id), fastq2 (optional, fastq file id)"
    )
    reference = spec("variant-calling", "reference")
    assert inputs.accepts_text(reference) == "fasta: fasta, fasta.gz"
    extra = spec("demo", "extra")
    assert inputs.picker_kinds(extra) == [None] and inputs.upload_kind(extra) is None
    assert inputs.accepts_text(extra) == "any file: txt"
    assert inputs.sheet_hint(extra) is None
