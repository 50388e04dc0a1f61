"""The dashboard under the gateway's security headers, in headless Chromium: its
Content-Security-Policy lets every page work (the ``browser`` fixture fails on any console
error, CSP violations included), and a server whose reads are private asks the browser to
sign in, then serves the dashboard."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.browser.conftest import BROWSER_TOKEN
from tests.browser.helpers import text_of, wait_for

pytestmark = pytest.mark.browser


def submit(gw: Any, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.post(
        gw.url + "/api/v1/runs",
        json={"workflow": "demo", "config": {"samples": 1, "sleep": 0}},
        headers=headers,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def test_every_page_works_under_the_content_security_policy(gateway, browser) -> None:
    d = browser
    run_id = submit(gateway)
    page = requests.get(gateway.url + "/dashboard/", timeout=30)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    d.get(gateway.url + "/dashboard/")
    wait_for(d, lambda d: run_id in d.page_source, 30)
    wait_for(d, lambda d: text_of(d, "#conn-badge").lower() == "live", 30)
    d.get(gateway.url + "/dashboard/launch?workflow=demo")
    wait_for(d, lambda d: "Writes a small text file" in text_of(d, "#launch-about"), 30)
    d.get(gateway.url + f"/dashboard/runs/{run_id}")
    wait_for(d, lambda d: text_of(d, "#run-state").strip() == "COMPLETE", 180)
    assert d.find_elements(By.ID, "jobs-grid")


def test_a_private_dashboard_asks_to_sign_in_then_serves(private_gateway, browser) -> None:
    gw = private_gateway
    refused = requests.get(gw.url + "/dashboard/", timeout=30)
    assert refused.status_code == 401
    assert 'Basic realm="snakedeck"' in refused.headers["WWW-Authenticate"]
    run_id = submit(gw, BROWSER_TOKEN)
    d = browser
    # What the browser sends once the user typed the token into its sign-in prompt.
    basic = base64.b64encode(f"ana:{BROWSER_TOKEN}".encode()).decode()
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}}
    )
    d.get(gw.url + f"/dashboard/runs/{run_id}")
    wait_for(d, lambda d: "by ana" in text_of(d, "#run-title"), 30)
    d.get(gw.url + "/dashboard/")
    wait_for(d, lambda d: run_id in d.page_source, 30)
