"""The run page on runs seeded straight into the gateway's store (the event streams the
Snakemake plugin sends, tests/support/events.py), so the numbers shown are known exactly:
outcomes apart, rules in pipeline order, a hand-run run, unique ids.

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import (
    SCREENSHOTS,
    duplicate_ids,
    open_tab,
    rule_graph_geometry,
    seed_hand_run,
    seed_run,
    text_of,
    text_when,
    wait_for,
    wait_grid_rows,
    with_rulegraph,
)
from tests.browser.test_dashboard import grid_states, pick, run_state
from tests.support.events import synthetic_run

pytestmark = pytest.mark.browser

PIPELINE = ["fetch", "align", "merge", "all"]


def rule_rows(d: Any) -> list[str]:
    return [
        el.text.split("\n")[0]
        for el in d.find_elements(By.CSS_SELECTOR, "#rule-progress .sd-rule-row")
    ]


def shown_options(d: Any) -> list[str]:
    """The options of the Select dropdown open now (closed ones stay in the page, hidden)."""
    return [o.text for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.is_displayed()]


def rule_row(d: Any, rule: str) -> str:
    return text_of(d, f'[id*=\'"rule":"{rule}"\']').replace("\n", " ")


@pytest.fixture(scope="module")
def failed_run(gateway: Any) -> Any:
    """fetch: 3 done, align: 2 done and 1 failed, merge and all never ran (8 jobs)."""
    run = with_rulegraph(synthetic_run("seededfail01", samples=3, fail_job=6))
    seed_run(gateway.settings, run)
    return run


def test_a_failed_run_shows_done_failed_and_not_run_apart(gateway, browser, failed_run):
    d = browser
    d.get(f"{gateway.url}/dashboard/runs/{failed_run.run_id}")
    wait_for(d, lambda d: run_state(d) == "EXECUTOR_ERROR", 30)
    done, failed, not_run = (len(failed_run.jobs_in(s)) for s in ("done", "failed", "not_run"))
    assert (done, failed, not_run) == (5, 1, 2)
    label = "5 of 8 jobs done (62%) · 1 failed · 2 not run"
    wait_for(d, lambda d: text_of(d, "#run-progress-label") == label, 20)
    # The bar: a section per outcome, none of them counted as done.
    sections = d.find_elements(By.CSS_SELECTOR, "#run-overall [data-state]")
    assert [s.get_attribute("data-state") for s in sections] == ["done", "failed", "not_run"]
    assert "2 of 3 done 1 failed" in rule_row(d, "align")
    assert "0 of 1 done 1 not run" in rule_row(d, "merge")
    text_when(d, "#run-failed", lambda t: "1 job failed" in t)
    # Its workflow ("synthetic") is not registered here: Rerun could only fail, so it is off.
    assert not d.find_element(By.ID, "run-rerun").is_enabled()
    wait_grid_rows(d)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SCREENSHOTS / "run-failed.png"))
    # The table's state filter knows "not run" by its name.
    pick(d, "job-state", "failed")
    wait_for(d, lambda d: grid_states(d) == ["failed"], 20)
    d.find_element(By.ID, "job-state").click()
    assert "not run" in wait_for(d, shown_options, 10)
    d.find_element(By.ID, "job-state").send_keys(Keys.ESCAPE)


GRID_DURATIONS_JS = """
const api = window.dash_ag_grid.getApi("jobs-grid");
const out = [];
api.forEachNode(n => { if (n.data) out.push([n.data.jobid, n.data.duration]); });
return out;
"""


def test_one_click_on_duration_puts_the_longest_job_first(gateway, browser, failed_run):
    d = browser
    d.get(f"{gateway.url}/dashboard/runs/{failed_run.run_id}")
    wait_grid_rows(d)
    api = f"{gateway.url}/api/v1/runs/{failed_run.run_id}/jobs"
    longest = requests.get(api, params={"sort": "-duration", "page_size": 1}, timeout=10)
    longest = longest.json()["jobs"][0]
    header = d.find_element(By.CSS_SELECTOR, "#jobs-grid .ag-header-cell[col-id=duration]")
    header.click()
    rows = wait_for(
        d,
        lambda d: (r := d.execute_script(GRID_DURATIONS_JS)) and r[0][0] == longest["jobid"] and r,
        20,
    )
    timed = [duration for _, duration in rows if duration is not None]
    assert timed == sorted(timed, reverse=True), rows
    assert header.get_attribute("aria-sort") == "descending"


def test_rules_are_listed_and_drawn_in_pipeline_order(gateway, browser, failed_run):
    d = browser
    d.get(f"{gateway.url}/dashboard/runs/{failed_run.run_id}")
    wait_for(d, lambda d: rule_rows(d) == PIPELINE, 30)  # not alphabetical: align, all, ...
    d.find_element(By.ID, "job-rule").click()
    assert wait_for(d, shown_options, 10) == PIPELINE
    d.find_element(By.ID, "job-rule").send_keys(Keys.ESCAPE)
    geometry = wait_for(d, lambda d: rule_graph_geometry(d), 20)
    ys = {n["id"]: n["y"] for n in geometry["nodes"]}
    assert sorted(ys, key=ys.get) == PIPELINE  # top to bottom along the pipeline
    assert geometry["font_px"] >= 11, geometry
    for node in geometry["nodes"]:  # the whole graph fits its box
        box = node["box"]
        assert box["x1"] >= 0 and box["y1"] >= 0, node
        assert box["x2"] <= geometry["width"] and box["y2"] <= geometry["height"], node


def test_a_hand_run_run_offers_neither_rerun_nor_cancel(gateway, browser):
    run = synthetic_run("handrun00001", samples=3)
    halfway = len(run.events) // 2  # still RUNNING: a submitted run could be cancelled now
    seed_hand_run(gateway.settings, run, halfway, workflow="x")
    d = browser
    d.get(f"{gateway.url}/dashboard/runs/{run.run_id}")
    wait_for(d, lambda d: run_state(d) == "RUNNING", 30)
    text_when(d, "#run-title", lambda t: "hand-run" in t.lower())
    rerun = d.find_element(By.ID, "run-rerun")
    cancel = d.find_element(By.ID, "run-cancel")
    assert not rerun.is_enabled() and not cancel.is_enabled()
    for button, why in ((rerun, "cannot run it again"), (cancel, "stop it where it runs")):
        wrapper = button.find_element(By.XPATH, "..")
        ActionChains(d).move_to_element(wrapper).perform()
        tip = wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, "[role=tooltip]"), 10)
        wait_for(d, lambda d, tip=tip, why=why: why in tip[0].text, 10)
        ActionChains(d).move_by_offset(0, 200).perform()
        wait_for(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=tooltip]"), 10)
    # Clicking a disabled button does nothing (no request the API would refuse with 409/422).
    d.execute_script("arguments[0].click();", rerun)
    assert f"/dashboard/runs/{run.run_id}" in d.current_url
    assert not text_of(d, "#run-action-msg")


def test_no_two_elements_share_an_id_on_any_page(gateway, browser, failed_run):
    d = browser
    d.get(f"{gateway.url}/dashboard/")
    wait_for(d, lambda d: failed_run.run_id in text_of(d, "#runs-table"), 30)
    assert duplicate_ids(d) == []
    d.find_element(By.ID, "token-open").click()
    wait_for(d, lambda d: d.find_elements(By.ID, "token-input"), 10)
    assert duplicate_ids(d) == []
    d.find_element(By.ID, "token-input").send_keys(Keys.ESCAPE)

    d.get(f"{gateway.url}/dashboard/launch?workflow=demo")
    wait_for(d, lambda d: "Writes a small text file" in text_of(d, "#launch-about"), 30)
    assert duplicate_ids(d) == []

    d.get(f"{gateway.url}/dashboard/runs/{failed_run.run_id}")
    wait_grid_rows(d)
    assert duplicate_ids(d) == []
    # The job drawer and its title (Mantine gives a drawer's title an id of its own).
    failed = '[id*=\'"type":"failed-job"\']'
    wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, failed), 20)
    d.execute_script("arguments[0].click();", d.find_element(By.CSS_SELECTOR, failed))
    wait_for(d, lambda d: "job 6" in text_of(d, "#job-detail-heading"), 20)
    assert duplicate_ids(d) == []
    ActionChains(d).send_keys(Keys.ESCAPE).perform()  # close the drawer
    wait_for(d, lambda d: not d.find_elements(By.CSS_SELECTOR, ".job-log-content"), 10)
    open_tab(d, "Timeline")
    wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#gantt .js-plotly-plot"), 20)
    assert duplicate_ids(d) == []
