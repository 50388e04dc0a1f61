"""Pure dashboard helpers: schema → form, state colors, Gantt figure, rule-graph elements."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dashboard import figures, schema_form, theme

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


def test_state_colors_cover_every_state():
    from snakedeck.states import JobState, RunState

    for state in RunState:
        assert theme.run_state_color(state.value) in theme.MANTINE_HEX
    for state in JobState:
        assert theme.job_state_hex(state.value).startswith("#")
    assert theme.run_state_color("COMPLETE") == "green"
    assert theme.job_state_color("failed") == "red"


def test_progress_and_durations():
    f = theme.progress_fractions({"total": 4, "done": 2, "failed": 1, "running": 1})
    assert f["done"] == 50 and f["failed"] == 25 and f["overall"] == 75
    assert theme.progress_fractions({})["overall"] == 0
    assert theme.format_duration(None) == "—"
    assert theme.format_duration(0.25) == "250 ms"
    assert theme.format_duration(75) == "1 min 15 s"
    assert theme.format_duration(7380) == "2 h 03 min"
    run = {"started_at": "2026-01-01T00:00:00.000Z", "finished_at": "2026-01-01T00:01:00.000Z"}
    assert theme.run_duration(run) == 60
    assert theme.rule_state({"total": 2, "done": 2}) == "done"
    assert theme.rule_state({"total": 2, "done": 1, "failed": 1}) == "failed"
    assert theme.rule_state({"total": 2, "running": 1}) == "running"
    assert theme.rule_state({"total": 2}) == "pending"


def _job(jobid, rule, state, start, end=None, **extra):
    return {
        "jobid": str(jobid),
        "rule": rule,
        "state": state,
        "started_at": start,
        "finished_at": end,
        **extra,
    }


def test_gantt_has_a_lane_per_rule_and_a_trace_per_state():
    jobs = [
        _job(
            1, "make", "done", "2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z", wildcards={"s": "a"}
        ),
        _job(2, "make", "failed", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
        _job(3, "count", "running", "2026-01-01T00:00:02Z"),
        _job(4, "merge", "pending", None),
    ]
    now = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    fig = figures.gantt_figure(jobs, now=now)
    names = {t.name: t for t in fig.data}
    assert set(names) == {"done", "failed", "running"}
    assert names["done"].x[0] == 2000
    assert names["running"].x[0] == 3000  # still running: drawn up to now
    assert names["done"].marker.color == theme.MANTINE_HEX["green"]
    assert "s=a" in names["done"].hovertext[0]
    assert list(fig.layout.yaxis.categoryarray) == ["count", "make"]
    assert "3 jobs" in fig.layout.title.text


def test_rule_graph_from_snakemake_rulegraph():
    rulegraph = {
        "nodes": [{"rule": "all"}, {"rule": "summarize"}, {"rule": "count"}, {"rule": "make"}],
        "links": [
            {"source": 1, "target": 0},
            {"source": 2, "target": 1},
            {"source": 3, "target": 2},
        ],
    }
    counts = {
        "make": {"total": 3, "done": 2, "failed": 1},
        "count": {"total": 3, "done": 2},
        "summarize": {"total": 1},
        "all": {"total": 1},
    }
    elements = figures.rule_graph_elements(rulegraph, counts)
    nodes = {e["data"]["id"]: e for e in elements if "source" not in e["data"]}
    edges = [(e["data"]["source"], e["data"]["target"]) for e in elements if "source" in e["data"]]
    assert set(nodes) == {"all", "summarize", "count", "make"}
    assert ("make", "count") in edges and ("summarize", "all") in edges
    assert nodes["make"]["classes"] == "failed"
    assert "1 failed" in nodes["make"]["data"]["label"]
    assert nodes["summarize"]["classes"] == "pending"
    selectors = {s["selector"] for s in figures.cytoscape_stylesheet()}
    assert {".done", ".failed", ".running", ".pending", ".cancelled"} <= selectors


def test_rule_graph_without_rulegraph_uses_rule_counts():
    elements = figures.rule_graph_elements(None, {"a": {"total": 1, "done": 1}})
    assert elements == [
        {"data": {"id": "a", "label": "a\n1/1", "state": "done", "total": 1}, "classes": "done"}
    ]
