"""The run page's live updates, with the real service over SQLite: a new run summary changes
only the parts of the page it changes (a rule's row, a node, the badge), failed jobs appear as
they fail, and the cancel notice goes when the run has ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dash import Patch

from dashboard import rule_graph
from dashboard.context import Ctx, write_callback
from dashboard.pages.run import header, ids, live
from dashboard.pages.run.view import RunView
from snakedeck.auth import Authenticator
from snakedeck.bus.local import LocalBus
from snakedeck.projection import run_summary
from snakedeck.service import Service
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry
from tests.support.events import persist, synthetic_run
from tests.support.services import unique_namespace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    settings = Settings(
        data_dir=tmp_path / "data", workflows_dir=REPO / "workflows", namespace=unique_namespace()
    )
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.sqlite_path)
    store.ensure_schema()
    bus = LocalBus(settings.namespace)
    service = Service(settings, store, bus, WorkflowRegistry(settings.workflows_dir))
    yield Ctx(service=service, settings=settings, auth=Authenticator())
    bus.close()
    store.close()


def summary_after(ctx: Ctx, run_id: str) -> dict:
    return dict(run_summary(ctx.service.get_run(run_id)))


def shown_for(summary: dict) -> live.Shown:
    view = RunView.of(summary)
    elements = rule_graph.elements(None, view.rule_counts, view.rule_order)
    return live.shown(summary, elements, registered=True)


def test_one_finished_job_patches_its_rule_only(ctx: Ctx) -> None:
    run = synthetic_run("live-a", samples=3, parallel=1)
    events = run.events
    finished = [i for i, e in enumerate(events) if e["type"] == "job_finished"]
    persist(ctx.service.store, events[: finished[0]])
    before = summary_after(ctx, run.run_id)
    persist(ctx.service.store, events[finished[0] : finished[0] + 1])
    after = summary_after(ctx, run.run_id)

    out = live.changes(ctx, shown_for(before), after, None)
    assert (ids.STATE, "children") not in out  # still RUNNING: the badge stays
    assert (ids.FAILED, "children") not in out
    rows = out[(ids.RULES, "children")]
    assert isinstance(rows, Patch)
    changed_rule = RunView.of(after).rules.index("fetch")
    locations = {tuple(op["location"]) for op in rows.to_plotly_json()["operations"]}
    assert locations == {("props", "children", changed_rule)}
    graph = out[(ids.GRAPH, "elements")]
    assert isinstance(graph, Patch)
    assert {tuple(op["location"]) for op in graph.to_plotly_json()["operations"]} == {
        (changed_rule,)
    }
    assert out[(ids.SHOWN, "data")]["summary"] == after


def test_the_rule_order_moves_only_when_the_pipeline_order_is_learnt(ctx: Ctx) -> None:
    run = synthetic_run("live-order", samples=2, parallel=1)
    persist(ctx.service.store, run.events[:-5])
    counted = summary_after(ctx, run.run_id)  # no rule graph yet: rules as they were counted
    pipeline = list(reversed(RunView.of(counted).rules))
    ordered = {**counted, "rule_order": pipeline}  # its rule graph arrived
    out = live.changes(ctx, shown_for(counted), ordered, None)
    assert out[(ids.RULE_ORDER, "data")] == pipeline
    # Nothing learnt, nothing moved (the timeline is not asked to redraw its lanes).
    assert (ids.RULE_ORDER, "data") not in live.changes(ctx, shown_for(ordered), ordered, None)


def test_a_failure_shows_the_failed_job_and_ends_the_cancel_button(ctx: Ctx) -> None:
    run = synthetic_run("live-b", samples=3, parallel=1, fail_job=3)
    half = len(run.events) // 3
    persist(ctx.service.store, run.events[:half])
    before = summary_after(ctx, run.run_id)
    persist(ctx.service.store, run.events[half:])
    after = summary_after(ctx, run.run_id)
    assert after["state"] == "EXECUTOR_ERROR"

    out = live.changes(ctx, shown_for(before), after, None)
    assert out[(ids.STATE, "children")].children == "EXECUTOR ERROR"
    alert = out[(ids.FAILED, "children")]
    assert alert.title == "1 job failed"
    assert "job 3" in str(alert.children.to_plotly_json())
    assert (ids.ACTIONS, "children") in out  # Cancel now says the run has ended
    words = str(out[(ids.OVERALL, "children")].to_plotly_json())
    assert "1 failed" in words and "not run" in words


def test_the_cancel_notice_goes_when_the_run_ends() -> None:
    running = {"run_id": "r", "state": "RUNNING", "cancel_requested": True, "workflow": "demo"}
    canceled = {**running, "state": "CANCELED"}
    assert RunView.of(running).cancelling and not RunView.of(canceled).cancelling
    out = live._header(None, RunView.of(running), RunView.of(canceled))  # type: ignore[arg-type]
    assert out[(ids.CANCEL_NOTE, "hide")] is True
    out = live._header(
        None, RunView.of({**running, "cancel_requested": False}), RunView.of(running)
    )  # type: ignore[arg-type]
    assert out[(ids.CANCEL_NOTE, "hide")] is False


def test_a_hand_run_run_offers_neither_resume_rerun_nor_cancel() -> None:
    view = RunView.of({"run_id": "h", "state": "RUNNING", "hand_run": True, "workflow": "x"})
    assert view.why_no_rerun and "by hand" in view.why_no_rerun
    assert view.why_no_cancel and "by hand" in view.why_no_cancel
    buttons = {
        c.id: c
        for c in header.actions(view)._traverse()
        if getattr(c, "id", None) in (ids.RERUN, ids.CANCEL)
    }
    assert buttons[ids.RERUN].disabled and buttons[ids.CANCEL].disabled
    tips = [c.label for c in header.actions(view)._traverse() if type(c).__name__ == "Tooltip"]
    assert view.why_no_resume and "by hand" in view.why_no_resume
    assert tips == [view.why_no_resume, view.why_no_rerun, view.why_no_cancel]
    submitted = RunView.of({"run_id": "s", "state": "RUNNING", "workflow": "demo"})
    assert submitted.why_no_rerun is None and submitted.why_no_cancel is None
    gone = RunView.of({"run_id": "g", "state": "COMPLETE", "workflow": "old"}, registered=False)
    assert gone.why_no_rerun and "'old'" in gone.why_no_rerun


def test_write_callbacks_check_the_token_once(ctx: Ctx) -> None:
    guarded = Ctx(ctx.service, ctx.settings, Authenticator(["s3cret"]))
    assert guarded.refusal(None) and "requires an API token" in guarded.refusal(None)
    assert guarded.refusal("wrong") == guarded.refusal(None)
    assert guarded.refusal("s3cret") is None
    assert ctx.refusal(None) is None  # no token configured: the local user may write

    registered: list = []

    class App:
        def callback(self, *deps, **options):
            registered.append((deps, options))
            return lambda fn: fn

    @write_callback(App(), guarded, denied=lambda message, *_: message)  # type: ignore[arg-type]
    def act(user: str | None) -> str:
        return f"done by {user}"

    deps, options = registered[0]
    assert [(d.component_id, d.component_property) for d in deps] == [
        ("token", "data"),
        ("user", "data"),
    ]
    assert options["prevent_initial_call"] is True
