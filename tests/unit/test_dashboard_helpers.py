"""Pure dashboard helpers: schema → form, state colours, durations, rule-graph elements."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dashboard import formatting, rule_graph, schema_form, theme
from snakedeck.states import JobState, RunState

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_schema() -> dict:
    return yaml.safe_load((REPO / "workflows/demo/workflow.yaml").read_text())["config_schema"]


def test_fields_follow_schema_order_and_types(demo_schema):
    specs = schema_form.fields_from_schema(demo_schema)
    kinds = {s.name: s.kind for s in specs}
    assert [s.name for s in specs] == list(demo_schema["properties"])
    assert kinds["samples"] == "integer"
    assert kinds["sleep"] == "number"
    assert kinds["mode"] == "enum"
    assert kinds["fail_sample"] == "string"
    samples = next(s for s in specs if s.name == "samples")
    assert (samples.default, samples.minimum, samples.maximum) == (6, 1, 500)


def test_required_and_json_fields():
    schema = {
        "type": "object",
        "required": ["ref"],
        "properties": {
            "ref": {"type": "string"},
            "opts": {"type": "object"},
            "fast": {"type": "boolean", "default": True},
            "n": {"type": ["integer", "null"]},
        },
    }
    specs = {s.name: s for s in schema_form.fields_from_schema(schema)}
    assert specs["ref"].required and specs["ref"].kind == "string"
    assert specs["opts"].kind == "json"
    assert specs["fast"].kind == "boolean"
    assert specs["n"].kind == "integer"
    assert schema_form.field_error(specs["ref"], "") == "required"
    assert schema_form.field_error(specs["opts"], "{bad").startswith("not valid JSON")
    config, errors = schema_form.config_from_values(
        list(specs.values()), {"ref": "hg38", "opts": '{"a": 1}', "fast": False, "n": ""}
    )
    assert errors == {}
    assert config == {"ref": "hg38", "opts": {"a": 1}, "fast": False}


def test_inline_messages_come_from_the_schema(demo_schema):
    specs = {s.name: s for s in schema_form.fields_from_schema(demo_schema)}
    assert schema_form.field_error(specs["samples"], 0) == "must be at least 1"
    assert schema_form.field_error(specs["samples"], 501) == "must be at most 500"
    assert schema_form.field_error(specs["samples"], 2.5) == "must be a whole number"
    assert "pattern" in schema_form.field_error(specs["fail_sample"], "s 3")
    assert schema_form.field_error(specs["fail_sample"], "") is None  # optional
    assert schema_form.field_error(specs["mode"], '"words"') is None
    config, errors = schema_form.config_from_values(
        list(specs.values()),
        {"samples": 3, "sleep": 0.5, "fail_sample": "s2", "mode": '"words"', "lines": ""},
    )
    assert errors == {}
    assert config == {"samples": 3, "sleep": 0.5, "fail_sample": "s2", "mode": "words"}


def test_every_field_renders_a_component(demo_schema):
    for spec in schema_form.fields_from_schema(demo_schema):
        component = schema_form.field_component(spec)
        assert component.id == {"type": "cfg", "name": spec.name}


def test_parse_tags():
    assert schema_form.parse_tags("project=x, owner = ana\nbatch=7") == (
        {"project": "x", "owner": "ana", "batch": "7"},
        None,
    )
    _tags, error = schema_form.parse_tags("oops")
    assert error and "key=value" in error


def test_list_fields_take_tags_and_check_each_item():
    schema = {
        "type": "object",
        "properties": {
            "samples": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[a-z0-9]+$"},
                "minItems": 1,
                "description": "Sample names, e.g. `s1`.",
            },
            "lanes": {"type": "array", "items": {"type": "integer", "minimum": 1}, "default": [1]},
            "modes": {"type": "array", "items": {"enum": ["lines", "words"]}},
            "pairs": {"type": "array", "items": {"type": "array"}},
        },
    }
    specs = {s.name: s for s in schema_form.fields_from_schema(schema)}
    assert specs["samples"].kind == "list" and specs["samples"].item_kind == "string"
    assert specs["lanes"].item_kind == "integer"
    assert specs["modes"].item_kind == "enum"
    assert specs["pairs"].kind == "json"  # arrays of arrays stay JSON
    tags = schema_form.field_component(specs["lanes"])
    assert type(tags).__name__ == "TagsInput" and tags.value == ["1"]
    assert type(schema_form.field_component(specs["modes"])).__name__ == "MultiSelect"
    assert schema_form.field_error(specs["lanes"], ["1", "x"]) == "'x' is not a whole number"
    assert schema_form.field_error(specs["lanes"], ["2", "0"]) == "item 2: must be at least 1"
    assert "pattern" in schema_form.field_error(specs["samples"], ["s1", "S 2"])
    assert schema_form.field_error(specs["samples"], ["s1"]) is None
    config, errors = schema_form.config_from_values(
        list(specs.values()),
        {"samples": ["s1", "s2"], "lanes": ["1", "3"], "modes": ['"words"'], "pairs": ""},
    )
    assert errors == {}
    assert config == {"samples": ["s1", "s2"], "lanes": [1, 3], "modes": ["words"]}
    _config, errors = schema_form.config_from_values(list(specs.values()), {"lanes": []})
    assert "lanes" not in errors  # no tag: the workflow's default applies


def test_descriptions_render_as_markdown(demo_schema):
    specs = {s.name: s for s in schema_form.fields_from_schema(demo_schema)}
    component = schema_form.field_component(specs["fail_sample"])
    assert type(component.description).__name__ == "Markdown"
    assert "`make_sample`" in component.description.children  # rendered as code, not text


def test_every_state_has_a_colour_of_its_own():
    run_colours = [theme.RUN_STATE_COLOR[s] for s in RunState]
    job_colours = [theme.JOB_STATE_COLOR[s] for s in JobState]
    assert len(set(run_colours)) == len(RunState), run_colours
    assert len(set(job_colours)) == len(JobState), job_colours
    for colour in run_colours + job_colours:
        assert colour in theme.MANTINE_HEX
    assert theme.run_state_color("COMPLETE") == "green"
    assert theme.job_state_color("failed") == "red"
    assert theme.job_state_label("not_run") == "not run"


def test_durations():
    assert formatting.format_duration(None) == "—"
    assert formatting.format_duration(0.25) == "250 ms"
    assert formatting.format_duration(75) == "1 min 15 s"
    assert formatting.format_duration(7380) == "2 h 03 min"
    run = {"started_at": "2026-01-01T00:00:00.000Z", "finished_at": "2026-01-01T00:01:00.000Z"}
    assert formatting.run_duration(run) == 60
    assert formatting.run_duration({"started_at": run["started_at"], "state": "CANCELED"}) is None


RULEGRAPH = {
    "nodes": [{"rule": "all"}, {"rule": "summarize"}, {"rule": "count"}, {"rule": "make"}],
    "links": [
        {"source": 1, "target": 0},
        {"source": 2, "target": 1},
        {"source": 3, "target": 2},
    ],
}


def test_rule_graph_from_snakemake_rulegraph():
    counts = {
        "make": {"total": 3, "done": 1, "failed": 1, "not_run": 1},
        "count": {"total": 3, "done": 1, "not_run": 2},
        "summarize": {"total": 1, "not_run": 1},
        "all": {"total": 1, "pending": 1},
    }
    order = ["make", "count", "summarize", "all"]
    elements = rule_graph.elements(RULEGRAPH, counts, order)
    nodes = [e for e in elements if "source" not in e["data"]]
    edges = [(e["data"]["source"], e["data"]["target"]) for e in elements if "source" in e["data"]]
    assert [n["data"]["id"] for n in nodes] == order  # pipeline order, not the graph's
    assert ("make", "count") in edges and ("summarize", "all") in edges
    by_id = {n["data"]["id"]: n for n in nodes}
    assert by_id["make"]["classes"] == "failed"
    assert by_id["make"]["data"]["label"] == "make\n1/3 · 1 failed · 1 not run"
    assert by_id["summarize"]["classes"] == "not_run"
    assert by_id["all"]["classes"] == "pending"
    selectors = {s["selector"] for s in rule_graph.stylesheet()}
    assert {f".{s.value}" for s in JobState} <= selectors


def test_rule_graph_is_tall_enough_for_its_levels():
    elements = rule_graph.elements(RULEGRAPH, {}, None)
    assert rule_graph.levels(elements) == 4
    assert rule_graph.height(elements) >= 4 * rule_graph.FONT_PX * 3
    assert rule_graph.layout(elements)["name"] == "breadthfirst"
    assert rule_graph.layout(elements)["directed"] is True
    flat = rule_graph.elements(None, {"a": {"total": 1}, "b": {"total": 1}})
    assert rule_graph.levels(flat) == 1 and rule_graph.layout(flat)["name"] == "grid"
    cycle = {
        "nodes": [{"rule": "a"}, {"rule": "b"}],
        "links": [{"source": 0, "target": 1}, {"source": 1, "target": 0}],
    }
    assert rule_graph.levels(rule_graph.elements(cycle, {})) <= 3  # terminates on a cycle


def test_rule_graph_without_rulegraph_uses_rule_counts():
    elements = rule_graph.elements(None, {"a": {"total": 1, "done": 1}})
    assert elements == [
        {"data": {"id": "a", "label": "a\n1/1", "state": "done", "total": 1}, "classes": "done"}
    ]
