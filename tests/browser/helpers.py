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

from snakedeck.envelope import now_iso
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.events import SyntheticRun

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
            store.persist(run.events[i : i + batch])
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
