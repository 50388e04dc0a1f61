"""Real analyses from registered files, end to end with every real part: files uploaded over
REST into the store → submit → RabbitMQ → runner (fetching the files from the store) →
Snakemake running BLAST+ / bwa / samtools / bcftools → consumer → store → gateway.

Run each alone (each is a real run of a real workflow):
``pytest tests/integration/test_inputs_e2e.py -k blast``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.service import Runner
from snakedeck.bus import open_bus
from snakedeck.store import open_store
from tests.integration.test_gateway_rest import assert_problem
from tests.support.live_clients import REPO, Pipeline, wait_until
from tests.support.rest import api, finished

BLAST_DATA = REPO / "workflows" / "blast" / "testdata"
VC_DATA = REPO / "workflows" / "variant-calling" / "testdata"


@pytest.fixture
def pipeline(settings_factory, store_backend: str) -> Iterator[Pipeline]:
    p = Pipeline(settings_factory(backend=store_backend, cores=2, cancel_grace=5.0))
    try:
        yield p.start(runner=True)
    finally:
        p.stop()


def upload(url: str, path: Path, name: str | None = None, **fields: Any) -> str:
    resp = api(
        url, "POST", "/files", files={"file": (name or path.name, path.read_bytes())}, data=fields
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["file_id"]


def submit(url: str, workflow: str, inputs: dict[str, str], **body: Any) -> str:
    resp = api(url, "POST", "/runs", json={"workflow": workflow, "inputs": inputs, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def assert_expected_hits(hits_tsv: Path) -> None:
    got = read_tsv(hits_tsv)
    expected = read_tsv(BLAST_DATA / "expected_hits.tsv")
    assert [{k: row[k] for k in expected[0]} for row in got] == expected
    assert not any(row["query"] == "q4_nohit" for row in got)


def test_blast_from_uploaded_files_finds_the_known_hits(pipeline: Pipeline) -> None:
    url = pipeline.url
    queries = upload(url, BLAST_DATA / "queries.fa")
    reference = upload(url, BLAST_DATA / "reference.fa")
    run_id = submit(
        url, "blast", {"queries": queries, "reference": reference}, config={"evalue": 1e-5}
    )
    run = finished(url, run_id)
    assert run["state"] == "COMPLETE", run
    assert run["config"] == {"evalue": 1e-5}
    assert run["inputs"]["queries"]["file_id"] == queries
    work = pipeline.settings.runs_dir / run_id / "work"
    assert_expected_hits(work / "hits.tsv")
    assert {rule: c["done"] for rule, c in run["rule_counts"].items()} == {
        "all": 1,
        "makeblastdb": 1,
        "split_query": 4,
        "blast": 4,
        "merge": 1,
    }
    assert "Identities = 300/300 (100%)" in (work / "reports" / "q1.txt").read_text()
    # while nothing runs, the files can go; a rerun then says which one is missing
    assert api(url, "DELETE", f"/files/{reference}").status_code == 204
    body = assert_problem(api(url, "POST", f"/runs/{run_id}/rerun"), 409)
    assert reference in body["detail"]


def sheet_bytes(kind: str, rows: list[list[str]]) -> tuple[str, bytes]:
    if kind == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return "samples.csv", out.getvalue().encode()
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    return "samples.xlsx", data.getvalue()


def upload_reads(url: str) -> list[list[str]]:
    """Upload the test FASTQs; the sample sheet's rows with their file ids."""
    rows = [["sample", "fastq1", "fastq2"]]
    with (VC_DATA / "samples.template.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            ids = [upload(url, VC_DATA / row[c]) if row[c] else "" for c in ("fastq1", "fastq2")]
            rows.append([row["sample"], *ids])
    return rows


@pytest.mark.parametrize("sheet_format", ["csv", "xlsx"])
def test_a_sample_sheet_drives_variant_calling(pipeline: Pipeline, sheet_format: str) -> None:
    url = pipeline.url
    rows = upload_reads(url)
    name, data = sheet_bytes(sheet_format, rows)
    sheet = api(url, "POST", "/files", files={"file": (name, data)}).json()
    assert sheet["kind"] == "table" and sheet["table"]["rows"] == 3
    reference = upload(url, VC_DATA / "reference.fa")
    run_id = submit(url, "variant-calling", {"samples": sheet["file_id"], "reference": reference})
    run = finished(url, run_id)
    assert run["state"] == "COMPLETE", run
    done = {rule: c["done"] for rule, c in run["rule_counts"].items()}
    assert done == {"all": 1, "reference": 1, "map": 3, "index": 3, "stats": 3, "call": 1}
    work = pipeline.settings.runs_dir / run_id / "work"
    genotypes = called_genotypes(work / "variants.vcf")
    for snp in read_tsv(VC_DATA / "expected_snps.tsv"):
        carriers = set(snp["samples"].split(","))
        key = (snp["chrom"], int(snp["pos"]), snp["ref"], snp["alt"])
        assert genotypes[key] == {s: "1/1" if s in carriers else "0/0" for s in ("s1", "s2", "s3")}
    assert len(genotypes) == 4
    assert "1500 + 0 in total" in (work / "stats" / "s1.flagstat").read_text()
    assert "750 + 0 in total" in (work / "stats" / "s3.flagstat").read_text()


def called_genotypes(vcf: Path) -> dict[tuple[str, int, str, str], dict[str, str]]:
    samples: list[str] = []
    calls: dict[tuple[str, int, str, str], dict[str, str]] = {}
    for line in vcf.read_text().splitlines():
        if line.startswith("#CHROM"):
            samples = line.split("\t")[9:]
        elif line and not line.startswith("#"):
            cols = line.split("\t")
            key = (cols[0], int(cols[1]), cols[3], cols[4])
            calls[key] = {s: c.split(":")[0] for s, c in zip(samples, cols[9:], strict=True)}
    return calls


def test_a_sheet_that_breaks_its_schema_is_refused_with_rows_and_columns(
    pipeline: Pipeline,
) -> None:
    url = pipeline.url
    reads = upload(url, VC_DATA / "s1_R1.fastq.gz")
    reference = upload(url, VC_DATA / "reference.fa")
    rows = [
        ["sample", "fastq1", "fastq2"],
        ["s1", reads, ""],
        ["bad name!", reads, ""],
        ["s3", "", ""],
        ["s4", reference, "nosuchfileid"],
    ]
    name, data = sheet_bytes("xlsx", rows)
    sheet = upload_bytes(url, name, data)
    before = api(url, "GET", "/runs").json()["total"]
    resp = api(
        url,
        "POST",
        "/runs",
        json={"workflow": "variant-calling", "inputs": {"samples": sheet, "reference": reference}},
    )
    body = assert_problem(resp, 422, field="inputs.samples.row 3.sample")
    fields = {e["field"] for e in body["errors"]}
    assert "inputs.samples.row 4.fastq1" in fields
    rows[2][0], rows[3][1] = "s2", reads
    name, data = sheet_bytes("csv", rows)
    fixed = upload_bytes(url, name, data)
    resp = api(
        url,
        "POST",
        "/runs",
        json={"workflow": "variant-calling", "inputs": {"samples": fixed, "reference": reference}},
    )
    body = assert_problem(resp, 422, field="inputs.samples.row 5.fastq1")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert "takes fastq" in fields["inputs.samples.row 5.fastq1"]
    assert "not the id of a registered file" in fields["inputs.samples.row 5.fastq2"]
    for inputs, field in [
        ({"samples": fixed}, "inputs.reference"),
        ({"samples": reference, "reference": reference}, "inputs.samples"),
        ({"samples": fixed, "reference": "nosuchfileid"}, "inputs.reference"),
        ({"samples": fixed, "reference": reference, "extra": reads}, "inputs.extra"),
    ]:
        resp = api(url, "POST", "/runs", json={"workflow": "variant-calling", "inputs": inputs})
        assert_problem(resp, 422, field=field)
    assert api(url, "GET", "/runs").json()["total"] == before


def upload_bytes(url: str, name: str, data: bytes) -> str:
    resp = api(url, "POST", "/files", files={"file": (name, data)})
    assert resp.status_code == 201, resp.text
    return resp.json()["file_id"]


def test_a_file_a_running_run_uses_cannot_be_deleted(pipeline: Pipeline, tmp_path) -> None:
    url = pipeline.url
    extra = tmp_path / "extra.txt"
    extra.write_text("one more line\n")
    file_id = upload(url, extra)
    run_id = submit(url, "demo", {"extra": file_id}, config={"samples": 1, "sleep": 60})
    wait_until(
        lambda: api(url, "GET", f"/runs/{run_id}").json()["state"] == "RUNNING",
        120,
        "the run to start",
    )
    body = assert_problem(api(url, "DELETE", f"/files/{file_id}"), 409)
    assert run_id in body["detail"]
    assert api(url, "GET", f"/files/{file_id}/content").content == b"one more line\n"
    staged = pipeline.settings.runs_dir / run_id / "work" / "inputs" / "extra" / "extra.txt"
    assert staged.read_text() == "one more line\n"
    assert api(url, "POST", f"/runs/{run_id}/cancel").status_code == 202
    assert finished(url, run_id, 120)["state"] == "CANCELED"
    assert api(url, "DELETE", f"/files/{file_id}").status_code == 204


def test_runner_and_gateway_share_nothing_but_rabbitmq_and_the_store(
    settings_factory, tmp_path
) -> None:
    """Different DATA_DIRs (as on two hosts): the runner still gets the files."""
    gateway_settings = settings_factory(backend="mongo", data_dir=tmp_path / "gateway-host")
    runner_settings = gateway_settings.with_(data_dir=tmp_path / "runner-host")
    pipeline = Pipeline(gateway_settings).start()
    runner_store = open_store(runner_settings)
    pipeline.runner = Runner(runner_settings, open_bus(runner_settings), runner_store)
    pipeline.runner.start()
    try:
        url = pipeline.url
        queries = upload(url, BLAST_DATA / "queries.fa")
        reference = upload(url, BLAST_DATA / "reference.fa")
        run_id = submit(url, "blast", {"queries": queries, "reference": reference})
        run = finished(url, run_id)
        assert run["state"] == "COMPLETE", run
        assert_expected_hits(runner_settings.runs_dir / run_id / "work" / "hits.tsv")
        assert not (gateway_settings.runs_dir / run_id).exists()
        # Its results come through the store too, byte for byte, with the kinds declared.
        outputs = api(url, "GET", f"/runs/{run_id}/outputs").json()["outputs"]
        kinds = {o["path"]: o["kind"] for o in outputs}
        assert kinds["hits.tsv"] == "table"
        assert any(p.startswith("reports/") and k == "text" for p, k in kinds.items())
        hits = api(url, "GET", f"/runs/{run_id}/outputs/hits.tsv").content
        assert hits == (runner_settings.runs_dir / run_id / "work" / "hits.tsv").read_bytes()
        staged = runner_settings.runs_dir / run_id / "work" / "inputs" / "queries" / "queries.fa"
        assert staged.read_bytes() == (BLAST_DATA / "queries.fa").read_bytes()
    finally:
        pipeline.stop()
        runner_store.close()
