"""The dashboard in headless Chromium against a real gateway running the real pipeline
(standalone: runner + consumer + gateway, in-process bus, SQLite).

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import BROWSER_TOKEN
from tests.browser.helpers import (
    SCREENSHOTS,
    duplicate_ids,
    open_tab,
    rule_graph_geometry,
    text_of,
    text_when,
    wait_for,
    wait_grid_rows,
)

pytestmark = pytest.mark.browser

RUN_TIMEOUT = 180


def submit(gw: Any, config: dict[str, Any], token: str | None = None, **extra: Any) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.post(
        gw.url + "/api/v1/runs",
        json={"workflow": "demo", "config": config, **extra},
        headers=headers,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def run_state(driver: Any) -> str:
    return text_of(driver, "#run-state").strip().replace(" ", "_")


def pick(driver: Any, input_id: str, option: str) -> None:
    """Choose an option of a Mantine Select (its dropdown lives in a portal)."""
    field = wait_for(driver, lambda d: d.find_elements(By.ID, input_id), 30)[0]
    field.click()
    choice = wait_for(
        driver,
        lambda d: [
            o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == option
        ],
        10,
    )[0]
    if choice.get_attribute("aria-selected") == "true":
        field.send_keys(Keys.ESCAPE)  # already chosen: clicking again would deselect it
    else:
        choice.click()


def fill(driver: Any, name: str, value: str) -> None:
    """Type into a generated config field (its input carries the pattern-matching id)."""
    el = wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'input[id*=\'"name":"{name}"\']'),
        10,
    )[0]
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.BACKSPACE)
    el.send_keys(value)


def grid_states(driver: Any) -> list[str]:
    cells = driver.find_elements(
        By.CSS_SELECTOR, "#jobs-grid .ag-center-cols-container .ag-row [col-id=state]"
    )
    return [c.text for c in cells]


GANTT_JS = """
const plot = document.querySelector('#gantt .js-plotly-plot');
if (!plot || !plot.data || !plot.data.length) return null;
const bars = plot.data[0];
return {y: bars.y, base: bars.base, x: bars.x, color: bars.marker.color,
        lanes: plot.layout.yaxis.categoryarray, title: plot.layout.title.text};
"""


def gantt(driver: Any) -> dict[str, Any] | None:
    return driver.execute_script(GANTT_JS)


def overlapping_bars(fig: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Pairs of bars drawn over each other in one lane (there should be none)."""
    by_lane: dict[str, list[tuple[float, float, int]]] = {}
    for i, (lane, base, width) in enumerate(zip(fig["y"], fig["base"], fig["x"], strict=True)):
        start = datetime.fromisoformat(base).timestamp() * 1000
        by_lane.setdefault(lane, []).append((start, start + width, i))
    found = []
    for lane, bars in by_lane.items():
        bars.sort()
        for (_s1, e1, i), (s2, _e2, j) in pairwise(bars):
            if s2 < e1 - 1:  # 1 ms: the smallest bar drawn
                found.append((lane, i, j))
    return found


def test_launch_demo_from_the_form_and_follow_it_to_complete(gateway, browser):
    d = browser
    d.get(gateway.url + "/dashboard/launch")
    pick(d, "launch-workflow", "demo")
    wait_for(d, lambda d: "Writes a small text file" in text_of(d, "#launch-about"))
    # Descriptions are markdown: `fail_sample` is code, not text in backticks.
    about = d.find_element(By.ID, "launch-about")
    assert "`" not in about.text
    assert "fail_sample" in [c.text for c in about.find_elements(By.TAG_NAME, "code")]
    fields = d.find_element(By.ID, "launch-fields")
    assert "make_sample" in [c.text for c in fields.find_elements(By.TAG_NAME, "code")]
    assert "`" not in fields.text
    assert text_of(d, "#conn-badge") == ""  # nothing live on this page: no badge
    fill(d, "samples", "0")  # inline validation straight from the schema
    wait_for(d, lambda d: "must be at least 1" in d.find_element(By.ID, "launch-fields").text)
    fill(d, "samples", "3")
    fill(d, "sleep", "0.5")
    wait_for(d, lambda d: "must be at least" not in d.find_element(By.ID, "launch-fields").text)
    d.find_element(By.ID, "launch-tags").send_keys("project=browser-test")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(str(SCREENSHOTS / "launch.png"))
    d.find_element(By.ID, "launch-submit").click()

    wait_for(d, lambda d: "/dashboard/runs/" in d.current_url, 30)
    run_id = d.current_url.rstrip("/").rsplit("/", 1)[1]
    wait_for(d, lambda d: run_id in text_of(d, "#run-title"), 30)
    # The page is never reloaded from here on: everything arrives over the live feed.
    d.execute_script("window.__sdNoReload = true;")
    # The timeline, opened while the run goes, is patched live as jobs start and finish.
    open_tab(d, "Timeline")
    wait_for(d, lambda d: run_state(d) == "COMPLETE", RUN_TIMEOUT)
    wait_for(d, lambda d: "100%" in text_of(d, "#run-progress-label"), 30)
    text_when(d, "#run-progress-label", lambda t: "8 of 8 jobs done (100%)" in t)
    done = wait_for(d, lambda d: (g := gantt(d)) and len(g["x"]) == 8 and g, 30)
    wait_for(d, lambda d: set(gantt(d)["color"]) == {"#40c057"}, 30)  # every bar done (green)
    done = gantt(d)
    assert done["title"] == "8 jobs"
    # make_sample's three jobs ran side by side: a lane each, top lanes first, nothing drawn
    # over anything else.
    assert done["lanes"][-1] == "make_sample" and "make_sample · 2" in done["lanes"]
    assert overlapping_bars(done) == []
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(str(SCREENSHOTS / "timeline.png"))
    open_tab(d, "Jobs")
    wait_grid_rows(d)
    wait_for(d, lambda d: len(grid_states(d)) == 8 and set(grid_states(d)) == {"done"}, 30)
    assert d.execute_script("return window.__sdNoReload === true;"), "the page was reloaded"
    assert text_of(d, "#conn-badge").lower() == "live"
    rules = d.find_element(By.ID, "rule-progress").text
    assert "make_sample" in rules and "3 of 3 done" in rules
    # Pipeline order, not alphabetical; the graph top to bottom, readable, all of it in view.
    rows = d.find_elements(By.CSS_SELECTOR, "#rule-progress .sd-rule-row")
    order = [r.text.split("\n")[0] for r in rows]
    assert order == ["make_sample", "count", "summarize", "all"]
    geometry = wait_for(d, lambda d: rule_graph_geometry(d), 20)
    ys = {n["id"]: n["y"] for n in geometry["nodes"]}
    assert sorted(ys, key=ys.get) == order
    assert geometry["font_px"] >= 11, geometry
    for node in geometry["nodes"]:
        box = node["box"]
        assert box["y1"] >= 0 and box["y2"] <= geometry["height"], node
        assert box["x1"] >= 0 and box["x2"] <= geometry["width"], node
    assert duplicate_ids(d) == []
    open_tab(d, "Events")
    wait_for(d, lambda d: "run_state" in d.find_element(By.ID, "events-log").text, 10)
    open_tab(d, "Jobs")
    time.sleep(0.5)
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(str(SCREENSHOTS / "run.png"))


def test_runs_list_shows_new_runs_live(gateway, browser):
    d = browser
    d.get(gateway.url + "/dashboard/")
    wait_for(d, lambda d: text_of(d, "#conn-badge").lower() == "live", 30)
    d.execute_script("window.__sdNoReload = true;")
    run_id = submit(gateway, {"samples": 2, "sleep": 0.2}, tags={"batch": "live"})
    wait_for(d, lambda d: run_id in d.find_element(By.ID, "runs-table").text, 30)
    row = f'[id*=\'"run_id":"{run_id}"\']'
    wait_for(d, lambda d: "COMPLETE" in text_of(d, row), RUN_TIMEOUT)
    assert d.execute_script("return window.__sdNoReload === true;"), "the page was reloaded"
    # Filters go through the service: state and free text.
    pick(d, "runs-state", "COMPLETE")
    wait_for(d, lambda d: run_id in d.find_element(By.ID, "runs-table").text, 10)
    d.find_element(By.ID, "runs-q").send_keys("no-such-run-xyz")
    wait_for(d, lambda d: "No runs match" in d.find_element(By.ID, "runs-table").text, 10)
    d.find_element(By.ID, "runs-q").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    wait_for(d, lambda d: run_id in d.find_element(By.ID, "runs-table").text, 10)
    d.get(gateway.url + "/dashboard/")
    wait_for(d, lambda d: run_id in d.find_element(By.ID, "runs-table").text, 30)
    d.save_screenshot(str(SCREENSHOTS / "runs.png"))


def test_cancel_a_run_from_its_page(gateway, browser):
    d = browser
    run_id = submit(gateway, {"samples": 6, "sleep": 20})
    d.get(f"{gateway.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "RUNNING", 60)
    wait_for(d, lambda d: "running" in grid_states(d), 60)
    d.find_element(By.ID, "run-cancel").click()
    wait_for(d, lambda d: d.find_elements(By.ID, "cancel-yes"), 10)[0].click()
    wait_for(d, lambda d: "Cancel requested" in text_of(d, "#run-cancel-note"), 10)
    wait_for(d, lambda d: run_state(d) == "CANCELED", 60)
    # The notice goes once the run has ended; what it ended as is in the state badge.
    wait_for(d, lambda d: not text_of(d, "#run-cancel-note"), 10)
    wait_for(d, lambda d: "running" not in grid_states(d), 30)
    assert "cancelled" in grid_states(d)
    assert not d.find_element(By.ID, "run-cancel").is_enabled()
    # No job finished: a cancelled run is 0 % done, its stopped and unstarted jobs apart.
    label = wait_for(d, lambda d: "not run" in (t := text_of(d, "#run-progress-label")) and t, 30)
    assert label.startswith("0 of 14 jobs done (0%)")
    assert "cancelled" in label


def test_a_failing_run_shows_the_failed_job_and_its_log(gateway, browser):
    d = browser
    run_id = submit(gateway, {"samples": 3, "sleep": 0.2, "fail_sample": "s2"})
    d.get(f"{gateway.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "EXECUTOR_ERROR", RUN_TIMEOUT)
    wait_for(d, lambda d: "1 job failed" in text_of(d, "#run-failed"), 30)
    label = text_when(d, "#run-progress-label", bool)
    assert "1 failed" in label and "not run" in label, label  # apart, neither counted as done
    failed = '[id*=\'"type":"failed-job"\']'
    wait_for(d, lambda d: "sample=s2" in text_of(d, failed), 30)
    text_when(d, failed, lambda t: "make_sample" in t)
    # The alert re-renders with every live update; a DOM click does not race with that.
    d.execute_script("arguments[0].click();", d.find_element(By.CSS_SELECTOR, failed))
    wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".job-log-content"), 20)
    # The drawer fills in while it opens: wait for the log text rather than read it once.
    detail = text_when(d, "#job-detail", lambda t: "configured to fail" in t, 20)
    assert "samples/s2.txt" in detail  # outputs
    assert "sleep" in d.find_element(By.ID, "job-shell").text  # the shell command
    # The table finds it too: filter by state.
    ActionChains(d).send_keys(Keys.ESCAPE).perform()  # close the drawer
    wait_for(d, lambda d: not d.find_elements(By.CSS_SELECTOR, ".job-log-content"), 10)
    pick(d, "job-state", "failed")
    wait_for(d, lambda d: grid_states(d) == ["failed"], 20)


def test_token_required_writes_use_the_stored_token(token_gateway, browser):
    d = browser
    gw = token_gateway
    d.get(gw.url + "/dashboard/launch?workflow=demo")
    wait_for(d, lambda d: "Writes a small text file" in text_of(d, "#launch-about"))
    fill(d, "samples", "1")
    fill(d, "sleep", "0")
    d.find_element(By.ID, "launch-submit").click()
    wait_for(d, lambda d: "requires an API token" in text_of(d, "#launch-error"), 10)
    assert text_of(d, "#conn-badge").lower() in ("idle", "needs token")

    d.find_element(By.ID, "token-open").click()
    wait_for(d, lambda d: d.find_elements(By.ID, "token-input"), 10)
    d.find_element(By.ID, "token-input").send_keys("wrong")
    d.find_element(By.ID, "token-save").click()
    wait_for(d, lambda d: "not valid" in text_of(d, "#token-status"), 10)
    d.find_element(By.ID, "token-input").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    d.find_element(By.ID, "token-input").send_keys(BROWSER_TOKEN)
    d.find_element(By.ID, "user-input").send_keys("ana")
    d.find_element(By.ID, "token-save").click()
    wait_for(d, lambda d: not d.find_elements(By.ID, "token-input"), 10)
    d.find_element(By.ID, "launch-submit").click()
    wait_for(d, lambda d: "/dashboard/runs/" in d.current_url, 30)
    wait_for(d, lambda d: text_of(d, "#conn-badge").lower() == "live", 30)
    wait_for(d, lambda d: run_state(d) == "COMPLETE", RUN_TIMEOUT)
    assert "by ana" in text_of(d, "#run-title")
    # The token survives a reload (kept in the browser's local storage).
    d.refresh()
    wait_for(d, lambda d: text_of(d, "#conn-badge").lower() == "live", 30)
