"""The read-only check the launch form runs when a file is picked (``Service.check_input``): the
submit's own findings for that one input, and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from snakedeck.service import NotFound, Service
from tests.unit.test_service_files import files, register, settings

__all__ = ["files", "settings"]  # fixtures, used by name (store and service: conftest.py)


def test_a_fitting_file_has_no_problems(service: Service, files: dict[str, Any]) -> None:
    assert service.check_input("align", "reference", files["ref"]["file_id"]) == []
    assert service.check_input("align", "samples", files["sheet"]["file_id"]) == []
    # The other inputs (samples is required) are not this check's business.
    assert service.list_runs()["total"] == 0


def test_the_wrong_kind_and_a_broken_sheet_are_named_as_a_submit_names_them(
    service: Service, files: dict[str, Any]
) -> None:
    [wrong] = service.check_input("align", "reference", files["r1"]["file_id"])
    assert wrong["field"] == "inputs.reference" and "this input takes fasta" in wrong["message"]
    r1 = files["r1"]["file_id"]
    sheet = register(service, "bad.csv", f"sample,fastq1\ns1,{r1}\nbad name!,{r1}\ns3,\n".encode())
    found = {
        e["field"]: e["message"] for e in service.check_input("align", "samples", sheet["file_id"])
    }
    assert set(found) == {"inputs.samples.row 3.sample", "inputs.samples.row 4.fastq1"}
    assert service.check_input("align", "samples", "nosuchfile") == [
        {"field": "inputs.samples", "message": "no registered file has the id 'nosuchfile'"}
    ]


def test_an_unknown_workflow_or_input_is_not_found(service: Service, files: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        service.check_input("nope", "reference", files["ref"]["file_id"])
    with pytest.raises(NotFound):
        service.check_input("align", "nope", files["ref"]["file_id"])
