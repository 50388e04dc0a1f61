"""Registered files and submit's up-front checks, through the service with the real SQLite
store (blobs on disk), the in-process bus and a real workflow registry."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from snakedeck.auth import LOCAL_ADMIN as ADMIN
from snakedeck.service import Conflict, Invalid, NotFound, Service, TooLarge
from snakedeck.settings import Settings
from tests.support.services import unique_namespace

WORKFLOW = """
name: align
config_schema:
  type: object
  additionalProperties: false
  properties:
    threads: {type: integer, minimum: 1, default: 1}
    mode: {type: string, enum: [fast, slow], default: fast}
    extra: {type: object}
inputs:
  - name: reference
    kinds: [fasta]
  - name: samples
    table:
      columns:
        - {name: sample, pattern: "^[A-Za-z0-9_-]+$", unique: true}
        - {name: fastq1, file: {kind: fastq}}
        - {name: fastq2, file: {kind: fastq}, required: false}
  - name: notes
    required: false
    kinds: [text]
    formats: [txt]
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    workflows = tmp_path / "workflows"
    for name, text in {
        "align": WORKFLOW,
        "needs-tool": "requires: [surely-not-installed-xyz]\n",
    }.items():
        (workflows / name).mkdir(parents=True)
        (workflows / name / "workflow.yaml").write_text(text)
        (workflows / name / "Snakefile").write_text("rule all:\n    shell: 'true'\n")
    return Settings(
        data_dir=tmp_path / "data",
        workflows_dir=workflows,
        namespace=unique_namespace(),
        max_upload=64 * 1024,
    )


def register(service: Service, name: str, data: bytes, **kw: Any) -> dict[str, Any]:
    return service.register_file(service.put_content([data], by=ADMIN), name=name, **kw, by=ADMIN)


def blobs(settings: Settings) -> list[str]:
    root = settings.data_dir / "blobs"
    return sorted(p.name for p in root.glob("??/*")) if root.exists() else []


def fields(info: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in info.value.errors}


@pytest.fixture
def files(service: Service) -> dict[str, dict[str, Any]]:
    out = {
        "ref": register(service, "ref.fa", b">chr1\nACGTACGT\n"),
        "r1": register(service, "s1_R1.fq", b"@r1\nACGT\n+\nIIII\n"),
        "r2": register(service, "s1_R2.fq", b"@r2\nTTGC\n+\nIIII\n"),
        "notes": register(service, "notes.txt", b"hello\n"),
    }
    sheet = f"sample,fastq1,fastq2\ns1,{out['r1']['file_id']},{out['r2']['file_id']}\n"
    out["sheet"] = register(service, "samples.csv", sheet.encode())
    return out


def test_registration_detects_kinds_and_summarises_tables(service: Service, files) -> None:
    assert files["ref"]["kind"] == "fasta" and files["r1"]["kind"] == "fastq"
    sheet = files["sheet"]
    assert sheet["kind"] == "table" and sheet["format"] == "csv"
    assert sheet["table"]["columns"] == ["sample", "fastq1", "fastq2"]
    assert sheet["table"]["rows"] == 1
    assert sheet["table"]["preview"][0]["sample"] == "s1"
    listed = service.list_files(kind="table")
    assert [f["file_id"] for f in listed["files"]] == [sheet["file_id"]]
    doc, stream = service.open_file(files["ref"]["file_id"])
    with stream:
        assert stream.read() == b">chr1\nACGTACGT\n"
    assert doc["sha256"] == files["ref"]["sha256"]


def test_identical_uploads_share_one_blob(service: Service, settings: Settings) -> None:
    a = register(service, "a.fa", b">x\nAC\n")
    b = register(service, "b.fa", b">x\nAC\n")
    assert a["file_id"] != b["file_id"] and a["sha256"] == b["sha256"]
    assert blobs(settings) == [a["sha256"]]
    service.delete_file(a["file_id"], by=ADMIN)
    assert blobs(settings) == [a["sha256"]]
    service.delete_file(b["file_id"], by=ADMIN)
    assert blobs(settings) == []
    with pytest.raises(NotFound):
        service.get_file(a["file_id"])


@pytest.mark.parametrize(
    ("name", "data", "kind", "field", "message"),
    [
        ("x.csv", b"a,a\n1,2\n", None, "file", "appears twice"),
        ("q.fa", b"not fasta\n", None, "file", "is not FASTA"),
        ("sheet.txt", b"\x00\x01\x02", "table", "file", "is not a table"),
        ("cfg.yaml", b"- a list\n", "config", "file", "mapping"),
        ("x.fa", b">x\nA\n", "pdf", "kind", "is not one of"),
    ],
)
def test_refused_registrations_name_the_problem_and_keep_nothing(
    service: Service, settings: Settings, name, data, kind, field, message
) -> None:
    with pytest.raises(Invalid) as info:
        register(service, name, data, kind=kind)
    assert message in fields(info)[field]
    assert blobs(settings) == [] and service.list_files()["total"] == 0


def test_an_upload_past_the_limit_is_413_and_keeps_nothing(service, settings) -> None:
    with pytest.raises(TooLarge):
        service.put_content(io.BytesIO(b"x" * (64 * 1024 + 1)), by=ADMIN)
    assert blobs(settings) == []


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "..", "", "a\\b"])
def test_file_names_that_are_paths_are_refused(service: Service, bad: str) -> None:
    with pytest.raises(Invalid) as info:
        service.check_file_name(bad)
    assert "file" in fields(info)


def test_a_valid_submission_records_every_file(service: Service, files, store) -> None:
    ids = {k: v["file_id"] for k, v in files.items()}
    created = service.submit_run(
        "align", {"threads": 2}, {"reference": ids["ref"], "samples": ids["sheet"]}, by=ADMIN
    )
    run = service.get_run(created["run_id"])
    assert run["inputs"]["reference"]["sha256"] == files["ref"]["sha256"]
    assert set(run["inputs"]["samples"]["files"]) == {ids["r1"], ids["r2"]}
    assert run["file_ids"] == sorted([ids["ref"], ids["sheet"], ids["r1"], ids["r2"]])
    assert "path" not in str(run)
    with pytest.raises(Conflict) as info:
        service.delete_file(ids["r1"], by=ADMIN)
    assert created["run_id"] in info.value.detail
    assert service.get_file(ids["r1"])
    store.update_run(created["run_id"], {"state": "COMPLETE"})
    service.delete_file(ids["notes"], by=ADMIN)  # never used
    rerun = service.rerun_run(created["run_id"], by=ADMIN)
    again = service.get_run(rerun["run_id"])
    assert again["inputs"] == run["inputs"] and again["config"] == run["config"]
    store.update_run(rerun["run_id"], {"state": "COMPLETE"})
    service.delete_file(ids["r2"], by=ADMIN)
    with pytest.raises(Conflict) as info:
        service.rerun_run(created["run_id"], by=ADMIN)
    assert ids["r2"] in info.value.detail and "deleted" in info.value.detail


def test_submit_checks_every_input_up_front(service: Service, files) -> None:
    ids = {k: v["file_id"] for k, v in files.items()}
    with pytest.raises(Invalid) as info:
        service.submit_run(
            "align",
            {},
            {"reference": ids["r1"], "bogus": ids["ref"], "notes": "nosuchfile"},
            by=ADMIN,
        )
    got = fields(info)
    assert "has no input named 'bogus'" in got["inputs.bogus"]
    assert "is fastq" in got["inputs.reference"] and "takes fasta" in got["inputs.reference"]
    assert "is required" in got["inputs.samples"]
    assert "no registered file" in got["inputs.notes"]
    assert service.list_runs()["total"] == 0


def test_a_sheet_that_breaks_its_schema_is_refused_by_row_and_column(service, files) -> None:
    r1, ref = files["r1"]["file_id"], files["ref"]["file_id"]
    sheet = f"sample,fastq1,fastq2\ns1,{r1},\nbad name,{ref},\ns1,nosuch,\ns4,,\n".encode()
    bad = register(service, "bad.csv", sheet)
    with pytest.raises(Invalid) as info:
        service.submit_run("align", {}, {"reference": ref, "samples": bad["file_id"]}, by=ADMIN)
    got = fields(info)
    assert "does not match" in got["inputs.samples.row 3.sample"]
    assert "already appears in row 2" in got["inputs.samples.row 4.sample"]
    assert "required" in got["inputs.samples.row 5.fastq1"]
    assert "inputs.samples.row 3.fastq1" not in got  # values are checked once the sheet fits
    assert "row 3.sample" in info.value.detail
    fixed = register(service, "ok.csv", f"sample,fastq1\ns1,{r1}\ns2,{ref}\ns3,nosuch\n".encode())
    with pytest.raises(Invalid) as info:
        service.submit_run("align", {}, {"reference": ref, "samples": fixed["file_id"]}, by=ADMIN)
    got = fields(info)
    assert "this column takes fastq" in got["inputs.samples.row 3.fastq1"]
    assert "not the id of a registered file" in got["inputs.samples.row 4.fastq1"]


def test_a_non_table_as_sample_sheet_is_refused(service, files) -> None:
    ref = files["ref"]["file_id"]
    with pytest.raises(Invalid) as info:
        service.submit_run(
            "align", {}, {"reference": ref, "samples": files["notes"]["file_id"]}, by=ADMIN
        )
    assert "takes table" in fields(info)["inputs.samples"]


def test_a_config_file_with_overrides_is_merged_then_validated(service, files) -> None:
    ids = {"reference": files["ref"]["file_id"], "samples": files["sheet"]["file_id"]}
    cfg = register(service, "align.yaml", b"threads: 4\nextra: {a: 1, b: 2}\n")
    assert cfg["kind"] == "config"
    created = service.submit_run(
        "align", {"extra": {"b": 3}}, ids, config_file=cfg["file_id"], by=ADMIN
    )
    run = service.get_run(created["run_id"])
    assert run["config"] == {"threads": 4, "extra": {"a": 1, "b": 3}}
    assert run["config_file"]["file_id"] == cfg["file_id"]
    bad = register(service, "bad.yaml", b"threads: 0\n")
    with pytest.raises(Invalid) as info:
        service.submit_run("align", {}, ids, config_file=bad["file_id"], by=ADMIN)
    assert "config.threads" in fields(info)
    for wrong in (files["ref"]["file_id"], "nosuchfile"):
        with pytest.raises(Invalid) as info:
            service.submit_run("align", {}, ids, config_file=wrong, by=ADMIN)
        assert "config_file" in fields(info)


def test_an_unavailable_workflow_says_what_is_missing(service: Service) -> None:
    (wf,) = [w for w in service.list_workflows() if w["name"] == "needs-tool"]
    assert wf["available"] is False and "surely-not-installed-xyz" in wf["unavailable_reason"]
    with pytest.raises(Invalid) as info:
        service.submit_run("needs-tool", {}, by=ADMIN)
    assert "surely-not-installed-xyz" in fields(info)["workflow"]
