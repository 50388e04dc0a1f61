"""Pure helpers of the run page's artefact views: result previews, resources requested beside
measured, the failure's title, and when Resume is offered."""

from __future__ import annotations

import io

from dashboard import previews
from dashboard.pages.run import failure, resources, results, usage
from dashboard.pages.run.view import RunView


def test_a_tsv_result_previews_as_its_first_rows_under_its_header():
    data = b"sample\tlines\n" + b"".join(f"s{i}\t{i}\n".encode() for i in range(1, 151))
    shown = previews.as_table("summary.tsv", data, more=False)
    assert shown.kind == "table" and shown.columns == ["sample", "lines"]
    assert len(shown.rows) == previews.TABLE_ROWS and shown.rows[0] == {
        "sample": "s1",
        "lines": "1",
    }
    assert shown.partial and shown.note == "150 rows"


def test_a_cut_table_ends_at_its_last_whole_line():
    data, more = previews.head(io.BytesIO(b"a,b\n1,2\n3,4\n5,6\n"), limit=13)
    assert more and data == b"a,b\n1,2\n3,4\n5"
    shown = previews.as_table("t.csv", data, more)
    assert shown.rows == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}] and shown.partial


def test_what_is_no_table_is_shown_as_text_saying_why():
    shown = previews.as_table("notes.txt", b"just words\n", more=False)
    assert shown.kind == "text" and shown.text == "just words\n"
    assert shown.note.startswith("shown as text")
    twice = previews.as_table("t.tsv", b"a\ta\n1\t2\n", more=False)
    assert twice.kind == "text" and "twice" in twice.note


def test_resources_requested_are_shown_as_declared_beside_what_was_measured():
    asked = {"_cores": 2, "_nodes": 1, "mem_mb": 400, "mem_mib": 382, "runtime": 5, "tmpdir": "/t"}
    assert resources.requested_text(asked) == "cores 2, memory 400.0 MB, runtime 5 min 00 s"
    used = {"cpu_seconds": 3.0, "peak_rss_bytes": 314_572_800, "wall_seconds": 2.0}
    rows = resources.comparison(asked, 2, used)
    assert rows == [
        ("CPU", "2 core(s)", "3.0 CPU s (1.5 cores busy on average)"),
        ("Memory", "400.0 MB", "peak RSS 314.6 MB"),
        ("Time", "5 min 00 s", "wall 2.0 s"),
    ]
    assert resources.comparison({}, None, {})[1] == ("Memory", "—", "—")


def test_a_failure_is_titled_by_its_exit_code_or_signal():
    assert failure.summary_line({"exit_code": 3}) == "exit code 3"
    assert failure.summary_line({"exit_code": None, "signal": 9}) == "killed by signal 9"
    assert "raised inside Snakemake" in failure.summary_line({})
    assert failure.block({"state": "done"}) is None


def test_resume_is_offered_only_for_failed_or_cancelled_runs_snakedeck_started():
    def why(**summary):
        return RunView.of({"run_id": "r", "workflow": "demo", **summary}).why_no_resume

    assert why(state="EXECUTOR_ERROR") is None and why(state="CANCELED") is None
    assert "nothing left to do" in why(state="COMPLETE")
    assert "only once it ended" in why(state="RUNNING")
    assert "by hand" in why(state="EXECUTOR_ERROR", hand_run=True)


def test_result_links_quote_the_path_and_never_join_it():
    url = results.output_url("r1", "plots/a b#1.svg", inline=True)
    assert url == "/api/v1/runs/r1/outputs/plots/a%20b%231.svg?disposition=inline"


def test_the_run_usage_plot_has_cpu_and_memory_per_sample():
    fig = usage.figure(
        {"width": 1.0, "points": [[1_800_000_000, 50.0, 2e8], [1_800_000_001, 99.5, 3e8]]}
    )
    cpu, rss = fig["data"]
    assert cpu["y"] == [50.0, 99.5] and rss["y"] == [200.0, 300.0] and rss["yaxis"] == "y2"
    assert cpu["x"][0] == "2027-01-15 08:00:00"
    assert usage.figure(None)["layout"]["annotations"][0]["text"] == "No samples yet"


def test_the_side_card_gives_the_last_sample_and_the_peak_memory():
    series = {"points": [[1, 50.0, 2e8], [2, 180.4, 3.5e9], [3, 99.5, 3e8]]}
    assert usage.latest_and_peak(series) == (
        "Last sample: CPU 100 %, memory 300 MB; peak memory 3,500 MB. Over time: the Timeline tab."
    )
    assert usage.latest_and_peak(None) == "No samples yet."
