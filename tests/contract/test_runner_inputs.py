"""The runner stages a run's registered files from the store alone, on every store backend:
what the service recorded at submit is enough to rebuild the inputs in a fresh run directory
(another host, another DATA_DIR)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.inputs import InputsError, stage_inputs
from snakedeck.auth import LOCAL_ADMIN
from snakedeck.bus.local import LocalBus
from snakedeck.rundir import run_dir
from snakedeck.service import Service
from snakedeck.store import open_store
from snakedeck.workflows import WorkflowRegistry

WORKFLOW = """
inputs:
  - name: reference
    kinds: [fasta]
  - name: samples
    table:
      columns:
        - {name: sample}
        - {name: fastq1, file: {kind: fastq}}
        - {name: fastq2, file: {kind: fastq}, required: false}
        - {name: depth, type: integer, required: false}
"""


@pytest.fixture
def service(store_backend: str, settings_factory, tmp_path: Path) -> Iterator[Service]:
    workflows = tmp_path / "workflows"
    (workflows / "align").mkdir(parents=True)
    (workflows / "align" / "workflow.yaml").write_text(WORKFLOW)
    (workflows / "align" / "Snakefile").write_text("rule all:\n    shell: 'true'\n")
    settings = settings_factory(backend=store_backend, bus="local", workflows_dir=workflows)
    store = open_store(settings)
    bus = LocalBus(settings.namespace)
    yield Service(settings, store, bus, WorkflowRegistry(workflows))
    bus.close()
    store.drop()
    store.close()


def put(service: Service, name: str, data: bytes) -> str:
    blob = service.put_content([data], by=LOCAL_ADMIN)
    return service.register_file(blob, name=name, by=LOCAL_ADMIN)["file_id"]


def test_inputs_and_sheet_files_are_staged_from_the_store(service: Service, tmp_path) -> None:
    ref = put(service, "ref.fa", b">c\nA\n")
    r1 = put(service, "reads.fq", b"@a\nA\n+\nI\n")
    r2 = put(service, "reads.fq", b"@b\nC\n+\nI\n")  # the same display name, other content
    sheet = put(
        service, "s.csv", f"sample,fastq1,fastq2,depth\ns1,{r1},{r2},5\ns2,{r2},,\n".encode()
    )
    created = service.submit_run("align", {}, {"reference": ref, "samples": sheet}, by=LOCAL_ADMIN)
    recorded = service.get_run(created["run_id"])["inputs"]

    # another machine: a fresh runs directory, only the store in common
    rd = run_dir(tmp_path / "elsewhere" / "runs", created["run_id"]).create()
    wf = service.registry.get("align")
    staged = stage_inputs(service.store, rd, wf, recorded)
    config = staged.config()
    assert config["inputs"] == {
        "reference": "inputs/reference/ref.fa",
        "samples": "inputs/samples/s.csv",
    }
    assert (rd.work / "inputs/reference/ref.fa").read_bytes() == b">c\nA\n"
    (s1, s2) = config["tables"]["samples"]
    assert (
        s1["sample"] == "s1" and s1["depth"] == 5 and s2["depth"] is None and s2["fastq2"] is None
    )
    assert s1["fastq1"] == f"inputs/samples/{r1}/reads.fq"
    assert s1["fastq2"] == s2["fastq1"] == f"inputs/samples/{r2}/reads.fq"
    assert (rd.work / s1["fastq1"]).read_bytes() == b"@a\nA\n+\nI\n"
    assert (rd.work / s2["fastq1"]).read_bytes() == b"@b\nC\n+\nI\n"
    json.dumps(config)  # it goes into config.json as it is


def test_a_client_name_never_becomes_a_path(service: Service, tmp_path) -> None:
    ref = put(service, "ref.fa", b">c\nA\n")
    doc = service.get_file(ref)
    rd = run_dir(tmp_path / "runs", "r1").create()
    forged = {"reference": {**doc, "name": "../../../../etc/passwd"}}
    staged = stage_inputs(service.store, rd, None, forged)
    path = (rd.work / staged.inputs["reference"]).resolve()
    assert path.is_relative_to((rd.work / "inputs").resolve())
    assert path.read_bytes() == b">c\nA\n"


def test_missing_or_changed_content_is_named_without_paths(service: Service, tmp_path) -> None:
    ref = put(service, "ref.fa", b">c\nA\n")
    doc = service.get_file(ref)
    rd = run_dir(tmp_path / "runs", "r1").create()
    other = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(InputsError, match="missing from the store") as info:
        stage_inputs(service.store, rd, None, {"reference": {**doc, "sha256": other}})
    assert str(tmp_path) not in str(info.value)
    with pytest.raises(InputsError, match="not a usable name"):
        stage_inputs(service.store, rd, None, {"../x": doc})
