"""The WES mapping of snakedeck's documents (``snakedeck/service/wes.py``), without a server."""

from __future__ import annotations

import pytest

from snakedeck.service.wes import (
    BadRequest,
    Links,
    RunRequestForm,
    outputs,
    page_size,
    parse_request,
    run_request,
    snakemake_version,
    task_log,
    task_name,
    wes_state,
    wes_time,
)

LINKS = Links(root="http://gw:8000")


def test_states_times_and_names() -> None:
    assert wes_state("CANCELING") == "CANCELING"
    assert wes_state("pending") == wes_state(None) == "UNKNOWN"
    assert wes_time("2026-03-02T09:00:00.123456+01:00") == "2026-03-02T08:00:00Z"
    assert wes_time("yesterday") is None
    assert task_name({"rule": "count", "wildcards": {"sample": "s1", "mode": "w"}}) == (
        "count[sample=s1, mode=w]"
    )
    assert task_name({"rule": "all", "wildcards": {}}) == "all"
    assert task_name({"jobid": "7", "wildcards": ["a", "b"]}) == "job 7[a, b]"


def test_a_failed_job_as_a_task() -> None:
    job = {
        "run_id": "r1",
        "jobid": "3",
        "rule": "make_sample",
        "wildcards": {"sample": "s2"},
        "state": "failed",
        "shellcmd": "exit 3",
        "started_at": "2026-03-02T09:00:00+00:00",
        "failure": {"exit_code": 3, "message": "CalledProcessError: exit 3"},
    }
    task = task_log(job, LINKS).out()
    assert task == {
        "id": "3",
        "name": "make_sample[sample=s2]",
        "cmd": ["exit 3"],
        "start_time": "2026-03-02T09:00:00Z",
        "stdout": "http://gw:8000/api/v1/runs/r1/jobs/3/log",
        "stderr": "http://gw:8000/api/v1/runs/r1/jobs/3/log",
        "exit_code": 3,
        "system_logs": ["state: failed", "failure: CalledProcessError: exit 3"],
    }
    assert "exit_code" not in task_log({**job, "state": "running", "failure": {}}, LINKS).out()


def test_a_cluster_job_as_a_task_names_where_the_scheduler_ran_it() -> None:
    job = {"run_id": "r1", "jobid": "4", "rule": "count", "state": "failed",
           "cluster_job_id": "1207", "scheduler": "slurm", "partition": "debug", "node": "n1",
           "cluster_state": "OUT_OF_MEMORY", "cluster_reason": ""}  # fmt: skip
    assert task_log(job, LINKS).out()["system_logs"] == [
        "state: failed",
        "cluster_job_id: 1207",
        "scheduler: slurm",
        "partition: debug",
        "node: n1",
        "cluster_state: OUT_OF_MEMORY",
    ]


def test_a_rest_run_as_a_wes_request_and_its_outputs() -> None:
    run = {
        "workflow": "demo",
        "workflow_version": "1.0.0",
        "config": {"samples": 2},
        "inputs": {"extra": {"file_id": "f_1", "sha256": "ab"}},
        "tags": {"k": "v"},
    }
    request = run_request(run).out()
    assert request["workflow_url"] == "demo@1.0.0"
    assert request["workflow_params"] == {"samples": 2, "inputs": {"extra": "f_1"}}
    assert "workflow_engine_parameters" not in request
    listing = {
        "run_id": "r1",
        "outputs": [{"path": "counts/s 1.tsv", "size": 4, "sha256": "cd", "kind": "table"}],
        "report": {"path": "snakemake_report.html", "size": 9, "sha256": "ef", "report": True},
    }
    found = outputs(listing, LINKS)
    assert found["counts/s 1.tsv"]["location"] == (
        "http://gw:8000/api/v1/runs/r1/outputs/counts/s%201.tsv"
    )
    assert found["counts/s 1.tsv"]["checksum"] == "sha256$cd"
    assert found["snakemake_report.html"]["location"] == "http://gw:8000/api/v1/runs/r1/report"


def _form(**fields: str) -> RunRequestForm:
    base = {
        "workflow_type": "SMK",
        "workflow_type_version": snakemake_version(),
        "workflow_url": "demo",
    }
    return RunRequestForm(fields={**base, **fields})


def test_the_form() -> None:
    got = parse_request(
        _form(workflow_params='{"samples": 2, "inputs": {"extra": "f_1"}}',
              workflow_engine_parameters='{"cores": 2}'),
        max_cores=4,
    )  # fmt: skip
    assert (got.config, got.inputs, got.cores) == ({"samples": 2}, {"extra": "f_1"}, 2)
    for bad, said in [
        (_form(workflow_engine_parameters='{"cores": "0"}'), "cores"),
        (_form(workflow_engine_parameters='{"cores": true}'), "cores"),
        (_form(workflow_engine_parameters='{"cores": "5"}'), "cores"),
        (_form(workflow_engine_version=snakemake_version()), "needs workflow_engine"),
        (_form(workflow_engine="cromwell"), "cromwell"),
        (_form(workflow_params='{"inputs": ["f_1"]}'), "inputs"),
        (_form(workflow_params='{"a": ' * 40 + "1" + "}" * 40), "workflow_params"),
        (_form(workflow_url="../demo"), "not a URL"),
        (RunRequestForm(fields=_form().fields, attachments=1), "workflow_attachment"),
        (RunRequestForm(fields=_form().fields, repeated=["tags"]), "more than once"),
    ]:
        with pytest.raises(BadRequest, match=said):
            parse_request(bad, max_cores=4)


def test_page_size() -> None:
    assert page_size(None) == 50 and page_size("7") == 7 and page_size("5000") == 1000
    for bad in ("0", "-1", "ten", "1.5", str(2**63)):
        with pytest.raises(BadRequest, match="page_size"):
            page_size(bad)
