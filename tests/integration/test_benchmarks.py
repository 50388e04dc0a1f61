"""The benchmarks still run: each cheap one at its smallest size prints its result row (a
figure and a ratio against the baseline it measured). Speed itself is never asserted here."""

from __future__ import annotations

import re

import pytest

from benchmarks import bench_capacity, bench_persist, bench_pipeline, profile_persist

ROW = re.compile(r"^ROW \| (?P<what>[^|]+) \| (?P<figures>[^|]+) \| (?P<ratio>[\d.]+)x ", re.M)


def rows(text: str) -> dict[str, str]:
    return {m["what"].strip(): m["ratio"] for m in ROW.finditer(text)}


def test_persist_prints_a_row_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    bench_persist.main(["--sizes", "20", "60", "--backends", "sqlite"])
    found = rows(capsys.readouterr().out)
    assert set(found) == {"persist cost, sqlite, 20 jobs", "persist cost, sqlite, 60 jobs"}
    assert found["persist cost, sqlite, 20 jobs"] == "1.000"  # the baseline is itself


def test_pipeline_and_capacity_print_their_rows(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_pipeline.main(["--events", "300"])
    bench_capacity.main(["--events", "1000", "--consumers", "1"])
    found = rows(capsys.readouterr().out)
    assert "pipeline throughput" in found
    assert float(found["pipeline throughput"]) > 0
    assert "capacity, 1 consumer(s), 100 runners" in found


def test_persist_profile_names_what_grew(capsys: pytest.CaptureFixture[str]) -> None:
    profile_persist.main(["--jobs", "1000", "--top", "3"])
    out = capsys.readouterr().out
    assert re.search(r"batches of 500: first \d+ batches [\d.]+ s, last \d+", out), out
    assert len(re.findall(r"^ +[+-]\d+\.\d{3} ", out, re.M)) == 3
