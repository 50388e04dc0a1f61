"""Headless Chromium and a seeded gateway for the dashboard's browser tests and benchmark."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from snakedeck import envelope
from snakedeck.envelope import now_iso
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.events import SyntheticRun, persist

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"


def chrome_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def start_chrome(width: int = 1366, height: int = 900) -> tuple[webdriver.Chrome, str]:
    """Headless Chromium at laptop size, with its console log readable (``goog:loggingPrefs``)."""
    profile = tempfile.mkdtemp(prefix="sd-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver, profile


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """SEVERE entries of the browser console since the last call (the log drains on read)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def wait_for(
    driver: webdriver.Chrome, predicate: Callable[[webdriver.Chrome], Any], timeout: float = 60
) -> Any:
    return WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.1,
        ignored_exceptions=(StaleElementReferenceException,),
    ).until(predicate)


def text_when(
    driver: webdriver.Chrome, css: str, holds: Callable[[str], bool], timeout: float = 30
) -> str:
    """The first match's text once ``holds`` is true of it, read in one piece.

    Waiting on a condition and then reading again races with a live re-render (the second
    read can see the element replaced, and ``text_of`` gives ``""``).
    """

    def read(d: webdriver.Chrome) -> str | None:
        text = text_of(d, css)
        return text if holds(text) else None

    return wait_for(driver, read, timeout)


def text_of(driver: webdriver.Chrome, css: str) -> str:
    """Text of the first match, ``""`` when absent (or re-rendered while being read)."""
    try:
        els = driver.find_elements(By.CSS_SELECTOR, css)
        return els[0].text if els else ""
    except StaleElementReferenceException:
        return ""


def seed_run(settings: Settings, run: SyntheticRun, **fields: Any) -> None:
    """A run document as the service would create it, then its events through the projection."""
    store = open_store(settings)
    try:
        doc = {
            "run_id": run.run_id,
            "workflow": "synthetic",
            "workflow_version": "1.0",
            "submitted_at": now_iso(),
            "tags": {"source": "synthetic"},
            "user": "bench",
            "config": {},
        }
        doc.update(fields)
        store.create_run(doc)
        batch = 2000
        for i in range(0, len(run.events), batch):
            persist(store, run.events[i : i + batch])
    finally:
        store.close()


SYNTHETIC_RULEGRAPH = {
    "nodes": [{"rule": "all"}, {"rule": "merge"}, {"rule": "align"}, {"rule": "fetch"}],
    "links": [
        {"source": 3, "target": 2},
        {"source": 2, "target": 1},
        {"source": 1, "target": 0},
    ],
}
"""The rule graph of tests/support/events.py's workflow: fetch → align → merge → all."""


def with_rulegraph(run: SyntheticRun) -> SyntheticRun:
    """The run with the ``rulegraph`` event the Snakemake plugin sends (appended last)."""
    event = envelope.make(
        run.run_id,
        "rulegraph",
        data={"rulegraph": SYNTHETIC_RULEGRAPH},
        ts=run.events[-1]["ts"],
        seq=len(run.events) + 1,
    )
    run.events.append(event)
    return run


def seed_hand_run(settings: Settings, run: SyntheticRun, events: int, workflow: str) -> None:
    """The first ``events`` events of a Snakemake started by hand and watched by snakedeck: no
    submit, no registered workflow; its first ``run_state`` registers the run."""
    first, *rest = run.events[:events]
    first = {**first, "data": {**first["data"], "hand_run": True, "workflow": workflow}}
    store = open_store(settings)
    try:
        result = store.persist([first, *rest])  # type: ignore[list-item]
        assert not result.unknown_runs
    finally:
        store.close()


def grid_rows(driver: webdriver.Chrome) -> int:
    return len(
        driver.find_elements(By.CSS_SELECTOR, "#jobs-grid .ag-center-cols-container .ag-row")
    )


def wait_grid_rows(driver: webdriver.Chrome, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while grid_rows(driver) == 0:
        if time.monotonic() > deadline:
            raise AssertionError("the job table showed no rows")
        time.sleep(0.02)


DUPLICATE_IDS_JS = """
const seen = new Set(); const twice = new Set();
for (const el of document.querySelectorAll('[id]')) {
  if (seen.has(el.id)) twice.add(el.id);
  seen.add(el.id);
}
return Array.from(twice);
"""


def duplicate_ids(driver: webdriver.Chrome) -> list[str]:
    """Every ``id`` attribute that more than one element of the page carries."""
    return list(driver.execute_script(DUPLICATE_IDS_JS))


RULE_GRAPH_JS = """
const box = document.getElementById('rule-graph');
const cy = box && box._cyreg && box._cyreg.cy;
if (!cy) return null;
const font = parseFloat(cy.nodes()[0].style('font-size'));
return {
  font_px: font * cy.zoom(), width: cy.width(), height: cy.height(),
  nodes: cy.nodes().map(n => ({id: n.id(), box: n.renderedBoundingBox(), y: n.position('y')})),
};
"""


def rule_graph_geometry(driver: webdriver.Chrome) -> dict[str, Any] | None:
    """The label size as drawn (font size times zoom) and each node's box, in screen pixels."""
    return driver.execute_script(RULE_GRAPH_JS)


def drop_file(driver: webdriver.Chrome, zone_css: str, path: Path) -> None:
    """Give a ``dcc.Upload`` a file as a drop or the file dialog would (its hidden input)."""
    field = wait_for(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"{zone_css} input[type=file]"), 30
    )[0]
    field.send_keys(str(path))


def dict_id_css(kind: str, **keys: str) -> str:
    """A CSS selector for a Dash pattern-matching id (rendered as JSON in the ``id``)."""
    parts = [f'[id*=\'"type":"{kind}"\']'] + [f'[id*=\'"{k}":"{v}"\']' for k, v in keys.items()]
    return "".join(parts)


def open_tab(driver: webdriver.Chrome, label: str) -> None:
    """Click the tab (or button) labelled ``label`` as a user would, after bringing it to the
    middle of the window: scrolled to the top edge it sits under the page's fixed header."""
    tab = driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", tab)
    tab.click()
