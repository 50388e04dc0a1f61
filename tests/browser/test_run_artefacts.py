"""The run page's view of what a run leaves, in headless Chromium against real parts: RabbitMQ,
the runner running real Snakemake, the consumer (both in this process), the gateway as its own
process, the Mongo store (mongoeco's wire server; a real MongoDB with
SNAKEDECK_TEST_MONGO_URI). Why a job failed (first in its drawer), the Log tab's live tail,
the Results tab's previews, the estimate while a run runs, measured resources in the job
table, and Resume.

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.browser.conftest import gateway_settings
from tests.browser.helpers import REPO, seed_run, text_of, text_when, wait_for, wait_grid_rows
from tests.browser.test_dashboard import run_state
from tests.support.events import synthetic_run
from tests.support.live_clients import Pipeline

pytestmark = pytest.mark.browser

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, amqp_url: str, mongo_uri: str
) -> Iterator[Pipeline]:
    """Consumer and runner here, the gateway in its own process, over the machine's RabbitMQ
    (a namespace of its own) and the Mongo store: the demo workflow and one whose failure can
    be fixed."""
    workflows = tmp_path_factory.mktemp("sd-artefact-workflows")
    (workflows / "demo").symlink_to(REPO / "workflows" / "demo")
    (workflows / "fixable").symlink_to(REPO / "tests" / "workflows" / "fixable")
    settings = gateway_settings(
        tmp_path_factory,
        amqp_url=amqp_url,
        mongo_uri=mongo_uri,
        mongo_db=f"sdbrowser_{uuid.uuid4().hex[:10]}",
        workflows_dir=workflows,
        sample_interval=0.25,
    )
    pipe = Pipeline(settings)
    try:
        yield pipe.start(runner=True)
    finally:
        pipe.stop()


def api(pipe: Pipeline, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{pipe.url}/api/v1{path}", timeout=60, **kw)


def submit(pipe: Pipeline, workflow: str, config: dict[str, Any]) -> str:
    resp = api(pipe, "POST", "/runs", json={"workflow": workflow, "config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def finished(pipe: Pipeline, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = api(pipe, "GET", f"/runs/{run_id}").json()
        if run["state"] in TERMINAL:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end")


def open_tab(d: Any, name: str) -> None:
    d.find_element(By.XPATH, f"//button[@role='tab'][normalize-space()='{name}']").click()


def open_failed_job(d: Any) -> None:
    failed = '[id*=\'"type":"failed-job"\']'
    wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, failed), 30)
    d.execute_script("arguments[0].click();", d.find_element(By.CSS_SELECTOR, failed))
    wait_for(d, lambda d: d.find_elements(By.ID, "job-failure"), 30)


@pytest.fixture(scope="module")
def complete_run(pipeline: Pipeline) -> str:
    """A COMPLETE demo run: results, a report, and the history the next runs' estimates use."""
    run_id = submit(pipeline, "demo", {"samples": 3, "sleep": 0.2})
    assert finished(pipeline, run_id)["state"] == "COMPLETE"
    return run_id


def test_a_failed_job_shows_why_it_failed_first_then_its_log_and_resources(pipeline, browser):
    run_id = submit(pipeline, "demo", {"samples": 3, "fail_sample": "s2", "sleep": 0.3})
    assert finished(pipeline, run_id)["state"] == "EXECUTOR_ERROR"
    d = browser
    d.get(f"{pipeline.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "EXECUTOR_ERROR", 30)
    open_failed_job(d)
    # The detail may re-render while read (text_of then gives ""): wait for its text.
    failure = text_when(d, "#job-failure", bool)
    assert "Why it failed: exit code 3" in failure, failure
    assert "ERROR: sample s2 is configured to fail (fail_sample)" in failure
    # Every section shown, read in one piece.
    detail = text_when(d, "#job-detail", lambda t: "Requested" in t)
    # First the failure, then the job's declared log (from the store), then its resources.
    assert detail.index("Why it failed") == 0, detail[:200]
    log_at = detail.index("logs/make_sample/s2.log")
    assert detail.index("configured to fail") < log_at < detail.index("Requested")
    log_text = text_when(d, ".job-log-content", bool)
    assert "make_sample s2: start" in log_text and "configured to fail" in log_text
    resources = text_when(d, "#job-resources", bool)
    assert "Requested" in resources and "Measured" in resources and "Memory" in resources


def test_a_table_result_is_previewed_and_the_report_linked(pipeline, browser, complete_run):
    d = browser
    d.get(f"{pipeline.url}/dashboard/runs/{complete_run}")
    wait_for(d, lambda d: run_state(d) == "COMPLETE", 30)
    open_tab(d, "Results")
    wait_for(d, lambda d: "summary.tsv" in text_of(d, "#results-table"), 30)
    outputs = {o["path"]: o for o in api(pipeline, "GET", f"/runs/{complete_run}/outputs").json()[
        "outputs"
    ]}  # fmt: skip
    rows = {
        r.find_element(By.CSS_SELECTOR, ".sd-result-path").text: r.text
        for r in d.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
    }
    assert set(rows) == set(outputs)  # summary.tsv, counts/s*.tsv, samples/s*.txt
    summary = outputs["summary.tsv"]
    assert "table" in rows["summary.tsv"].lower() and summary["sha256"][:12] in rows["summary.tsv"]
    assert f"{summary['size']} B" in rows["summary.tsv"]
    link = d.find_element(By.CSS_SELECTOR, "#results-table a[href$='/outputs/summary.tsv']")
    body = requests.get(link.get_attribute("href"), timeout=30)
    assert body.status_code == 200 and body.text.startswith("sample\tlines\n")
    report = d.find_element(By.ID, "run-report-link")
    assert requests.get(report.get_attribute("href"), timeout=30).status_code == 200

    preview = '[id*=\'"type":"result-preview"\'][id*=\'"path":"summary.tsv"\']'
    d.find_element(By.CSS_SELECTOR, preview).click()
    grid = "#result-grid .ag-center-cols-container .ag-row"
    wait_for(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, grid)) == 4, 30)  # 3 + total
    headers = [h.text for h in d.find_elements(By.CSS_SELECTOR, "#result-grid .ag-header-cell")]
    assert headers == ["sample", "lines"]
    cells = [r.text.split("\n") for r in d.find_elements(By.CSS_SELECTOR, grid)]
    assert sorted(cells) == [["s1", "5"], ["s2", "5"], ["s3", "5"], ["total", "15"]]
    # A text result is shown as text.
    d.find_element(
        By.CSS_SELECTOR, '[id*=\'"type":"result-preview"\'][id*=\'"path":"samples/s2.txt"\']'
    ).click()
    wait_for(d, lambda d: "s2 line 1: hello from snakedeck" in text_of(d, "#result-preview-text"))


USAGE_JS = """
const plot = document.querySelector('#run-usage .js-plotly-plot');
if (!plot || !plot.data || plot.data.length < 2 || !plot.data[1].y.length) return null;
return {points: plot.data[1].y.length, peak_mb: Math.max(...plot.data[1].y)};
"""


def log_end(d: Any) -> int:
    return int(d.execute_script("return (window.snakedeck.log || {}).end || 0;"))


def grid_headers(d: Any) -> list[str]:
    return [h.text for h in d.find_elements(By.CSS_SELECTOR, "#jobs-grid .ag-header-cell")]


def column(d: Any, col_id: str) -> list[str]:
    css = f"#jobs-grid .ag-center-cols-container [col-id={col_id}]"
    return [c.text for c in d.find_elements(By.CSS_SELECTOR, css)]


def test_a_running_run_shows_its_log_growing_and_an_estimate(pipeline, browser, complete_run):
    run_id = submit(pipeline, "demo", {"samples": 8, "sleep": 8})  # about 40 s of RUNNING
    d = browser
    d.get(f"{pipeline.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "RUNNING", 60)
    # The estimate, labelled as one, with what it is based on (the COMPLETE demo run).
    eta = wait_for(d, lambda d: text_of(d, ".sd-eta"), 90)
    assert "estimate" in eta.lower() and "left" in eta, eta
    assert "Based on" in eta and "earlier COMPLETE run" in eta, eta
    open_tab(d, "Log")
    first = wait_for(d, lambda d: text_of(d, "#run-log"), 60)
    first_end = log_end(d)
    # It grows from the live feed while the run runs (the page is never reloaded).
    wait_for(d, lambda d: log_end(d) > first_end and run_state(d) == "RUNNING", 60)
    grown = text_when(d, "#run-log", bool)
    assert len(grown) > len(first) and grown.startswith(first[:200])
    assert "Finished job" in grown or "steps" in grown, grown[-500:]
    wait_for(d, lambda d: run_state(d) == "COMPLETE", RUN_TIMEOUT)
    wait_for(d, lambda d: "100%" in text_of(d, "#run-log"), 60)  # the last lines too
    wait_for(d, lambda d: not text_of(d, ".sd-eta"), 30)  # no estimate once it has ended
    # The run's CPU and memory, as the runner sampled it: the latest and the peak beside the
    # tabs, the whole series on the Timeline tab (its charts mount when it is opened).
    side = text_when(d, "#run-usage-summary", lambda t: "peak memory" in t)
    assert "Last sample: CPU" in side and " MB" in side, side
    assert not d.find_elements(By.CSS_SELECTOR, "#run-usage .js-plotly-plot")  # not yet
    open_tab(d, "Timeline")
    usage = wait_for(d, lambda d: d.execute_script(USAGE_JS), 30)
    assert usage["points"] >= 3 and usage["peak_mb"] > 0, usage
    side = text_when(d, "#run-usage-summary", lambda t: "peak memory" in t)
    peak = float(side.rsplit("peak memory ", 1)[1].split(" MB")[0].replace(",", ""))
    assert abs(peak - usage["peak_mb"]) <= 1, (peak, usage)  # the same samples
    open_tab(d, "Log")
    whole = api(pipeline, "GET", f"/runs/{run_id}/log", params={"tail": 200_000}).json()["text"]
    shown = text_when(d, "#run-log", bool)
    assert shown.count("Finished job") == whole.count("Finished job")  # nothing twice

    # The job table: measured CPU, peak memory and wall time beside what was requested.
    open_tab(d, "Jobs")
    wait_grid_rows(d)
    # The grid draws only the columns in view: bring the measured ones into it.
    d.execute_script('window.dash_ag_grid.getApi("jobs-grid").ensureColumnVisible("requested")')
    assert "Requested" in wait_for(d, grid_headers, 10)
    assert "cores 1" in column(d, "requested")
    d.execute_script('window.dash_ag_grid.getApi("jobs-grid").ensureColumnVisible("wall_seconds")')
    wanted = ("CPU s", "Peak RSS", "Wall")
    wait_for(d, lambda d: set(wanted) <= set(grid_headers(d)), 10)
    peaks = wait_for(d, lambda d: [p for p in column(d, "peak_rss") if p], 10)
    cpus = column(d, "cpu_seconds")
    walls = column(d, "wall_seconds")
    assert any(p.endswith(("kB", "MB")) for p in peaks), peaks
    assert all(c.replace(".", "").isdigit() for c in cpus if c), cpus
    assert any(w.endswith(" s") and float(w.split()[0]) >= 7.5 for w in walls), walls  # sleep 8


def test_a_failed_run_is_resumed_from_its_page_and_completes(pipeline, browser, tmp_path: Path):
    marker = tmp_path / "reference.idx"
    run_id = submit(pipeline, "fixable", {"marker": str(marker)})
    assert finished(pipeline, run_id)["state"] == "EXECUTOR_ERROR"
    d = browser
    d.get(f"{pipeline.url}/dashboard/runs/{run_id}")
    wait_for(d, lambda d: run_state(d) == "EXECUTOR_ERROR", 30)
    open_failed_job(d)
    text_when(d, "#job-failure", lambda t: f"{marker} is missing" in t)
    d.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Escape closes the drawer
    wait_for(d, lambda d: not d.find_elements(By.ID, "job-failure"), 10)
    text_when(d, "#run-attempts", lambda t: "attempt 1" in t)

    marker.write_text("index\n")  # the cause is fixed outside the run
    resume = d.find_element(By.ID, "run-resume")
    assert resume.is_enabled()
    resume.click()
    wait_for(d, lambda d: "Resumed: attempt 2" in text_of(d, "#run-action-msg"), 30)
    wait_for(d, lambda d: run_state(d) == "COMPLETE", RUN_TIMEOUT)
    attempts = text_when(d, "#run-attempts", lambda t: "attempt 2" in t)
    assert attempts.index("attempt 2") < attempts.index("attempt 1")  # newest first
    assert "COMPLETE" in attempts and "EXECUTOR ERROR" in attempts, attempts
    label = "6 of 6 jobs done (100%)"
    wait_for(d, lambda d: text_of(d, "#run-progress-label") == label, 30)
    # A COMPLETE run has nothing left to do: Resume is off, saying why.
    wait_for(d, lambda d: not d.find_element(By.ID, "run-resume").is_enabled(), 30)


def test_a_refused_resume_shows_the_reason(pipeline, browser):
    """A failed run whose runner is not running cannot be resumed: the API's 409 reason."""
    run = synthetic_run("resumegone01", samples=2, fail_job=3)
    seed_run(pipeline.settings, run, workflow="demo", runner="runner-gone", host="elsewhere")
    refused = api(pipeline, "POST", f"/runs/{run.run_id}/resume")
    assert refused.status_code == 409
    d = browser
    d.get(f"{pipeline.url}/dashboard/runs/{run.run_id}")
    wait_for(d, lambda d: run_state(d) == "EXECUTOR_ERROR", 30)
    d.find_element(By.ID, "run-resume").click()
    wait_for(d, lambda d: text_of(d, "#run-action-msg") == refused.json()["detail"], 30)
    text_when(d, "#run-action-msg", lambda t: "runner-gone" in t)
