"""The launch form with registered files, in headless Chromium against a real gateway running
real BLAST+ / bwa / samtools / bcftools (the BLAST test over RabbitMQ and the Mongo store, with
the hits read back from the store; the sheet test on a standalone gateway): upload from the
form's pickers, pick a file registered before, start from a config file, submit, and check
what the analysis found; a sample sheet that breaks its schema has its problems shown at its
picker, by row and column.

Run each test alone (each is a real run of a real workflow):
``pytest tests/browser/test_launch_inputs.py -k blast``.
Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.browser.conftest import gateway_settings
from tests.browser.helpers import (
    REPO,
    SCREENSHOTS,
    dict_id_css,
    drop_file,
    duplicate_ids,
    text_of,
    wait_for,
)
from tests.browser.test_dashboard import run_state
from tests.support.live_clients import Pipeline

pytestmark = pytest.mark.browser

BLAST_DATA = REPO / "workflows" / "blast" / "testdata"
VC_DATA = REPO / "workflows" / "variant-calling" / "testdata"
RUN_TIMEOUT = 300


def upload_api(gw: Any, path: Path, **fields: str) -> dict[str, Any]:
    with path.open("rb") as f:
        resp = requests.post(
            f"{gw.url}/api/v1/files", files={"file": (path.name, f)}, data=fields, timeout=60
        )
    assert resp.status_code == 201, resp.text
    return resp.json()


def picker(d: Any, name: str) -> Any:
    """The search box of an input's picker."""
    css = f"input{dict_id_css('input-pick', name=name)}"
    return wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, css), 30)[0]


def choose(d: Any, field: Any, text: str) -> None:
    """Type into a searchable Select and click the option that holds ``text``."""
    field.click()
    field.send_keys(text)
    option = wait_for(
        d,
        lambda d: [
            o
            for o in d.find_elements(By.CSS_SELECTOR, "[role=option]")
            if text in o.text and o.is_displayed()
        ],
        10,
    )[0]
    option.click()


def input_box(d: Any, name: str) -> str:
    """Everything shown for an input: its picker, the upload note, its problems."""
    return text_of(d, f".sd-input:has({dict_id_css('input-pick', name=name)})")


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, amqp_url: str, mongo_uri: str
) -> Iterator[Pipeline]:
    """The deployment's own parts: RabbitMQ, the Mongo store (mongoeco's wire server; a real
    MongoDB with SNAKEDECK_TEST_MONGO_URI), runner and consumer here, the gateway a process."""
    settings = gateway_settings(
        tmp_path_factory,
        amqp_url=amqp_url,
        mongo_uri=mongo_uri,
        mongo_db=f"sdbrowser_{uuid.uuid4().hex[:10]}",
    )
    pipe = Pipeline(settings)
    try:
        yield pipe.start(runner=True)
    finally:
        pipe.stop()


def test_blast_from_the_form_with_an_upload_made_there(pipeline, browser, tmp_path):
    d = browser
    gw = pipeline.gateways[0]
    reference = upload_api(gw, BLAST_DATA / "reference.fa")
    d.get(gw.url + "/dashboard/launch?workflow=blast")
    wait_for(d, lambda d: "Searches every sequence" in text_of(d, "#launch-about"), 30)
    # The query FASTA is uploaded from its picker, registered, and picked at once.
    drop_file(d, dict_id_css("input-upload", name="queries"), BLAST_DATA / "queries.fa")
    wait_for(d, lambda d: "Uploaded and picked for queries" in input_box(d, "queries"), 30)
    assert "queries.fa · fasta" in input_box(d, "queries")
    [queries] = requests.get(f"{gw.url}/api/v1/files?q=queries.fa", timeout=30).json()["files"]
    assert picker(d, "queries").get_attribute("value").endswith(queries["file_id"])
    # The reference registered before is offered (a FASTA input lists FASTA files only).
    choose(d, picker(d, "reference"), reference["file_id"])
    wait_for(d, lambda d: reference["file_id"] in picker(d, "reference").get_attribute("value"))
    # A config file uploaded from the form fills the form with its values.
    config = tmp_path / "strict.yaml"
    config.write_text("evalue: 1.0e-5\nmax_target_seqs: 5\n")
    drop_file(d, "#launch-config-upload", config)
    wait_for(d, lambda d: "Filled from strict.yaml" in text_of(d, "#launch-config-note"), 30)
    evalue = d.find_element(By.CSS_SELECTOR, f"input{dict_id_css('cfg', name='evalue')}")
    assert float(evalue.get_attribute("value")) == 1e-5
    assert duplicate_ids(d) == []
    d.find_element(By.ID, "launch-tags").send_keys("project=browser-blast")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    d.set_window_size(1366, 1500)
    d.save_screenshot(str(SCREENSHOTS / "launch-inputs.png"))
    d.set_window_size(1366, 900)
    d.find_element(By.ID, "launch-submit").click()

    wait_for(d, lambda d: "/dashboard/runs/" in d.current_url, 30)
    run_id = d.current_url.rstrip("/").rsplit("/", 1)[1]
    wait_for(d, lambda d: run_state(d) == "COMPLETE", RUN_TIMEOUT)
    run = requests.get(f"{gw.url}/api/v1/runs/{run_id}", timeout=30).json()
    assert run["inputs"]["queries"]["file_id"] == queries["file_id"]
    assert run["inputs"]["reference"]["file_id"] == reference["file_id"]
    assert run["config_file"]["name"] == "strict.yaml"
    assert run["config"]["evalue"] == 1e-5 and run["config"]["max_target_seqs"] == 5
    # What BLAST found: the hits the shipped test data must give, and no hit for q4.
    served = requests.get(f"{gw.url}/api/v1/runs/{run_id}/outputs/hits.tsv", timeout=30)
    assert served.status_code == 200, served.text  # from the store: no disk is shared
    hits = list(csv.DictReader(served.text.splitlines(), delimiter="\t"))
    expected = read_tsv(BLAST_DATA / "expected_hits.tsv")
    assert [{k: row[k] for k in expected[0]} for row in hits] == expected
    assert not any(row["query"] == "q4_nohit" for row in hits)


def sheet(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def test_a_sheet_that_breaks_its_schema_is_shown_by_row_and_column(gateway, browser, tmp_path):
    d = browser
    gw = gateway
    reads = upload_api(gw, VC_DATA / "s1_R1.fastq.gz")["file_id"]
    reference = upload_api(gw, VC_DATA / "reference.fa")["file_id"]
    bad = sheet(
        tmp_path / "bad-samples.csv",
        [
            ["sample", "fastq1", "fastq2"],
            ["s1", reads, ""],
            ["bad name!", reads, ""],
            ["s3", "", ""],
            ["s4", reference, ""],
        ],
    )
    before = requests.get(f"{gw.url}/api/v1/runs", timeout=30).json()["total"]
    d.get(gw.url + "/dashboard/launch?workflow=variant-calling")
    wait_for(d, lambda d: "Maps each sample" in text_of(d, "#launch-about"), 30)
    assert "columns: sample, fastq1 (fastq file id), fastq2 (optional" in input_box(d, "samples")
    # Dropped on the picker: registered (it is a readable CSV), picked, and checked at once.
    drop_file(d, dict_id_css("input-upload", name="samples"), bad)
    wait_for(d, lambda d: "2 problems in this sheet" in input_box(d, "samples"), 30)
    assert sheet_problems(d) == [
        "row 3, column sample: 'bad name!' does not match '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'",
        "row 4, column fastq1: is empty; this column is required",
    ]
    box = d.find_element(
        By.CSS_SELECTOR, f".sd-input:has({dict_id_css('input-pick', name='samples')})"
    )
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    d.save_screenshot(str(SCREENSHOTS / "launch-sheet-errors.png"))
    # Those fixed, the cells that name files are checked: s4's "reads" are the reference.
    fixed = sheet(
        tmp_path / "samples.csv",
        [
            ["sample", "fastq1", "fastq2"],
            ["s1", reads, ""],
            ["s2", reads, ""],
            ["s4", reference, ""],
        ],
    )
    drop_file(d, dict_id_css("input-upload", name="samples"), fixed)
    wait_for(d, lambda d: "1 problem in this sheet" in input_box(d, "samples"), 30)
    [problem] = sheet_problems(d)
    assert (
        problem.startswith("row 4, column fastq1: file ") and "this column takes fastq" in problem
    )
    # A file that is not what the input takes is refused as it is uploaded, with the reason.
    drop_file(d, dict_id_css("input-upload", name="reference"), VC_DATA / "s1_R1.fastq.gz")
    wait_for(d, lambda d: "Not uploaded" in input_box(d, "reference"), 30)
    assert "'s1_R1.fastq.gz' is not FASTA" in input_box(d, "reference")
    # Submitting says so again, where it is, and starts nothing.
    choose(d, picker(d, "reference"), reference)
    d.find_element(By.ID, "launch-submit").click()
    wait_for(d, lambda d: "need fixing" in text_of(d, "#launch-error"), 30)
    assert sheet_problems(d) == [problem]
    assert "1 problem in this sheet" in input_box(d, "samples")
    assert requests.get(f"{gw.url}/api/v1/runs", timeout=30).json()["total"] == before


def sheet_problems(d: Any) -> list[str]:
    css = f"{dict_id_css('input-sheet-errors', name='samples')} li"
    return [li.text for li in d.find_elements(By.CSS_SELECTOR, css)]
