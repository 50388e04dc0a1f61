"""What everyone sees of runs others started: who submitted each (the runs list's column and
filter, the run page's header), and a cancel someone else asked for.

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.browser.conftest import gateway_settings
from tests.browser.helpers import REPO, dict_id_css, seed_run, text_of, wait_for
from tests.browser.test_dashboard import run_state
from tests.support.events import synthetic_run
from tests.support.live_clients import GatewayProcess

pytestmark = pytest.mark.browser

SLOW_STOP = """\
name: slow-stop
version: "1.0"
description: One job that takes three seconds to stop when it is told to.
"""
SLOW_STOP_SNAKEFILE = """\
rule all:
    output: "done.txt"
    shell: "trap 'sleep 3; exit 1' TERM; sleep 120 & wait; touch {output}"
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The demo, and a workflow whose cancel takes a few seconds (so a cancel under way can
    be seen, however quick the live feed is)."""
    workflows = tmp_path_factory.mktemp("sd-workflows")
    (workflows / "demo").symlink_to(REPO / "workflows" / "demo")
    (workflows / "slow-stop").mkdir()
    (workflows / "slow-stop" / "workflow.yaml").write_text(SLOW_STOP)
    (workflows / "slow-stop" / "Snakefile").write_text(SLOW_STOP_SNAKEFILE)
    settings = gateway_settings(tmp_path_factory, workflows_dir=workflows)
    with GatewayProcess(settings, standalone=True) as gw:
        yield gw


def submit_as(gw: Any, user: str, config: dict[str, Any], workflow: str = "demo") -> str:
    resp = requests.post(
        f"{gw.url}/api/v1/runs",
        json={"workflow": workflow, "config": config},
        headers={"X-Snakedeck-User": user},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def table(d: Any) -> str:
    return text_of(d, "#runs-table")


def test_the_runs_list_shows_and_filters_by_submitter(gateway, browser):
    d = browser
    ana = submit_as(gateway, "ana-lab", {"samples": 1, "sleep": 0})
    bo = submit_as(gateway, "bo-lab", {"samples": 1, "sleep": 0})
    d.get(gateway.url + "/dashboard/")
    wait_for(d, lambda d: ana in table(d) and bo in table(d), 30)
    assert "ana-lab" in text_of(d, dict_id_css("run-row", run_id=ana))
    assert "bo-lab" in text_of(d, dict_id_css("run-row", run_id=bo))
    d.find_element(By.ID, "runs-user").send_keys("ana-lab")
    wait_for(d, lambda d: bo not in table(d), 10)
    assert ana in table(d) and "1-1 of 1 runs" in text_of(d, "#runs-count")
    d.get(f"{gateway.url}/dashboard/runs/{ana}")
    wait_for(d, lambda d: "by ana-lab" in text_of(d, "#run-title"), 30)


def test_a_cancel_someone_else_asked_for_shows_on_an_open_page(gateway, browser):
    d = browser
    run_id = submit_as(gateway, "ana-lab", {}, workflow="slow-stop")
    d.get(f"{gateway.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "RUNNING", 60)
    wait_for(d, lambda d: "0 of 1 jobs done" in text_of(d, "#run-progress-label"), 60)
    assert not text_of(d, "#run-cancel-note")
    resp = requests.post(
        f"{gateway.url}/api/v1/runs/{run_id}/cancel",
        headers={"X-Snakedeck-User": "bo-lab"},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    # This page asked for nothing: the notice comes with the run summary the feed pushes.
    wait_for(d, lambda d: "Cancel requested" in text_of(d, "#run-cancel-note"), 30)
    wait_for(d, lambda d: run_state(d) == "CANCELED", 60)
    wait_for(d, lambda d: not text_of(d, "#run-cancel-note"), 10)


def test_a_page_opened_while_a_cancel_is_under_way_says_so(gateway, browser):
    """A run still RUNNING whose cancel was asked for (the run document's own flag, before the
    runner has answered): the page says so from its first render."""
    run = synthetic_run("cancelasked1", samples=3)
    running = dataclasses.replace(run, events=run.events[: len(run.events) // 2])
    seed_run(gateway.settings, running, cancel_requested=True, user="ana-lab")
    d = browser
    d.get(f"{gateway.url}/dashboard/runs/{run.run_id}")
    wait_for(d, lambda d: run_state(d) == "RUNNING", 30)
    assert "Cancel requested" in text_of(d, "#run-cancel-note")
