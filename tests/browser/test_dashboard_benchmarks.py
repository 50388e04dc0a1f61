"""The browser benchmarks still run: at a tiny size each prints what it measures (the row and
its ratio, the profile's requests). Speed itself is never asserted here."""

from __future__ import annotations

import re

import pytest

from benchmarks import bench_dashboard, profile_dashboard
from tests.browser.helpers import chrome_available
from tests.support.services import unavailable

pytestmark = pytest.mark.browser

ROW = re.compile(r"^ROW \| (?P<what>[^|]+) \| (?P<figures>[^|]+) \| (?P<ratio>[^|]+) \| ", re.M)


@pytest.fixture(autouse=True)
def _chrome() -> None:
    if not chrome_available():
        unavailable("chromium and chromedriver")


def test_the_dashboard_bench_prints_first_rows_resort_and_frames(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_dashboard.main(
        ["--jobs", "200", "--repeat", "1", "--live-rate", "100", "--live-seconds", "2"]
    )
    out = capsys.readouterr().out
    found = {m["what"].strip(): m for m in ROW.finditer(out)}
    first = found["big runs, browser (200 jobs): first job rows"]
    assert first["ratio"].strip().endswith("the 1,000-job run's page"), first[0]
    assert "big runs, browser (200 jobs): re-sort by duration" in found
    frames = found["big runs, browser (200-job run): frames while updates arrive"]
    # Every event published reached the page (its last seq is the last one sent).
    reached = re.search(r"page reached seq ([\d,]+) of ([\d,]+)", frames["figures"])
    assert reached and reached[1] == reached[2], frames["figures"]
    assert "browser console errors: 0" in out


def test_the_dashboard_profile_lists_a_loads_requests(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    profile_dashboard.main(["--jobs", "100", "--loads", "1"])
    out = capsys.readouterr().out
    assert "/dashboard/_dash-layout" in out
    assert "callback → ..jobs-grid.getRowsResponse" in out
    assert re.search(r"first job rows: median \d+ ms", out), out
