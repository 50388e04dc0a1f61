"""Property-based test of REST v1 from the project's own OpenAPI document (schemathesis).

The gateway runs in-process (WSGI) with the parts standalone mode uses: a real SQLite store
and the in-process bus, seeded with runs (one with jobs and events), files of every kind the
workflows take, and a config file, so path parameters and references hit real resources.

Every check schemathesis has runs on every generated request (:data:`CHECKS`): no 5xx, status
codes, content types, headers and bodies as documented, schema-violating requests refused,
schema-valid requests accepted, required headers, undeclared methods (405 with ``Allow``).
Generation is derandomized with a fixed seed and bounded (:data:`MAX_EXAMPLES` per operation),
so a run takes the same cases every time, in about a minute here.

What the document cannot know is narrowed here, each for a stated reason:

* path parameters are mapped onto the seeded resources for about two cases in three (random
  ids would all be 404, which proves little);
* in schema-valid cases, file ids in ``inputs``/``config_file`` are the seeded files of the
  right kind, and ``page_token`` is left out (server-issued, opaque values: a random one is
  rightly refused);
* schema-valid uploads whose *content* the server refuses (random bytes declared FASTA, a URL
  that cannot be fetched) are 422 naming ``file``/``url``, and schema-valid runs whose notify
  targets the server cannot use (a host that does not resolve or is private, e-mail without
  SMTP settings) are 422 naming ``notify.N.url``/``.format``: a document cannot describe file
  contents or the network, so those refusals are not counted as "valid request rejected".
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as _openapi_checks  # registers the OpenAPI checks

from snakedeck.auth import LOCAL_ADMIN
from snakedeck.run_inputs import FILE_ID_RE
from snakedeck.settings import Settings
from tests.support.events import persist, synthetic_run
from tests.support.in_process import in_process_gateway

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 100
assert _openapi_checks
RUN_CHECKS = [c for c in CHECKS.get_all() if c.__name__ != "max_response_time"]
"""Every registered check but ``max_response_time``, which only applies with a time limit."""
CHECKS_RUN = sorted(c.__name__ for c in RUN_CHECKS)
CONTENT_FIELDS = {("POST", "/api/v1/files"): {"file", "url"}}
NETWORK_FIELDS = {("POST", "/api/v1/runs"): re.compile(r"^notify\.\d+\.(url|format)$")}
"""A notify target's URL must resolve to an address the server may reach, and an e-mail
target needs SMTP settings: the network and the server's settings, which no document says."""


class Seeded:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.jobbed_run = ""
        self.files: list[str] = []
        self.inputs: dict[str, dict[str, str]] = {}
        self.config_file = ""
        self.service: Any = None

    def disposable_file(self) -> str:
        blob = self.service.put_content([b"to delete\n"], by=LOCAL_ADMIN)
        return self.service.register_file(blob, name="gone.txt", by=LOCAL_ADMIN)["file_id"]


SEEDED = Seeded()


def _register(service: Any, path_or_bytes: Path | bytes, name: str, kind: str | None = None) -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    blob = service.put_content([data], by=LOCAL_ADMIN)
    return service.register_file(blob, name=name, kind=kind, by=LOCAL_ADMIN)["file_id"]


def build_app(data_dir: Path) -> tuple[Any, Any, Any]:
    """The gateway as standalone mode builds it (no runner: runs stay QUEUED), seeded."""
    settings = Settings(
        data_dir=data_dir,
        workflows_dir=REPO / "workflows",
        namespace="schemathesis",
        rate_submit="off",
        rate_upload="off",
    )
    app, store, bus = in_process_gateway(settings)
    service = app.extensions["snakedeck.service"]
    SEEDED.service = service
    blast, vc = REPO / "workflows/blast/testdata", REPO / "workflows/variant-calling/testdata"
    extra = _register(service, b"one more line\n", "extra.txt")
    fastqs = {n: _register(service, vc / n, n) for n in ("s1_R1.fastq.gz", "s1_R2.fastq.gz")}
    sheet = f"sample,fastq1,fastq2\ns1,{fastqs['s1_R1.fastq.gz']},{fastqs['s1_R2.fastq.gz']}\n"
    SEEDED.inputs = {
        "demo": {"extra": extra},
        "blast": {
            "queries": _register(service, blast / "queries.fa", "queries.fa"),
            "reference": _register(service, blast / "reference.fa", "reference.fa"),
        },
        "variant-calling": {
            "samples": _register(service, sheet.encode(), "samples.csv"),
            "reference": _register(service, vc / "reference.fa", "vc-reference.fa"),
        },
    }
    SEEDED.config_file = _register(service, b"{}\n", "empty.yaml", kind="config")
    SEEDED.files = [extra, *fastqs.values(), SEEDED.config_file]
    SEEDED.runs = [
        service.submit_run("demo", {"samples": 2}, by=LOCAL_ADMIN)["run_id"] for _ in range(2)
    ]
    finished = synthetic_run("01seededrunwithjobs0", samples=2)
    persist(store, finished.events)
    SEEDED.jobbed_run = finished.run_id
    SEEDED.runs.append(finished.run_id)
    return app, store, bus


def load_schema(app: Any) -> Any:
    schema = schemathesis.openapi.from_wsgi("/apispec_1.json", app)
    schema = schema.include(path_regex="^/api/v1/")

    @schema.hook("map_case")
    def onto_seeded_resources(ctx: Any, case: Any) -> Any:
        op = (case.operation.method.upper(), case.operation.path)
        params = case.path_parameters or {}
        for name, value in list(params.items()):
            pick = int(hashlib.sha256(str(value).encode()).hexdigest(), 16)
            if pick % 3 == 0:
                continue  # keep the generated (unknown) id
            if name == "run_id":
                params[name] = (
                    SEEDED.jobbed_run if "jobid" in params else SEEDED.runs[pick % len(SEEDED.runs)]
                )
            elif name == "jobid":
                params[name] = str(1 + pick % 2)
            elif name == "file_id":
                params[name] = (
                    SEEDED.disposable_file()
                    if op[0] == "DELETE"
                    else SEEDED.files[pick % len(SEEDED.files)]
                )
            elif name == "name":
                params[name] = "demo"
        if not case.meta.is_negative_at(ParameterLocation.QUERY) and case.query:
            case.query.pop("page_token", None)
        body = case.body
        if (
            op == ("POST", "/api/v1/runs")
            and not case.meta.is_negative_at(ParameterLocation.BODY)
            and isinstance(body, dict)
        ):
            seeded = SEEDED.inputs.get(body.get("workflow"), {})
            inputs = body.get("inputs")
            if isinstance(inputs, dict):
                for key, value in list(inputs.items()):
                    if key in seeded and isinstance(value, str) and FILE_ID_RE.match(value):
                        inputs[key] = seeded[key]
            if isinstance(body.get("config_file"), str) and FILE_ID_RE.match(body["config_file"]):
                body["config_file"] = SEEDED.config_file
        return case

    @schema.hook("filter_failure")
    def content_refusals(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
        """Keep every failure except 'valid request rejected' for a refusal of content."""
        op = (case.operation.method.upper(), case.operation.path)
        fields = CONTENT_FIELDS.get(op, set())
        network = NETWORK_FIELDS.get(op)
        if not (fields or network) or response.status_code not in (413, 422):
            return True
        if type(failure).__name__ != "RejectedPositiveData":
            return True
        try:
            named = {e["field"] for e in response.json().get("errors", [])}
        except ValueError:
            return True
        return not (named and all(f in fields or (network and network.match(f)) for f in named))

    return schema


# Built when the module is collected: schemathesis parametrizes from a loaded document.
_DATA = tempfile.TemporaryDirectory(prefix="sd-schemathesis-")
APP, STORE, BUS = build_app(Path(_DATA.name) / "data")
schema = load_schema(APP)


@pytest.fixture(scope="module", autouse=True)
def _close() -> Iterator[None]:
    yield
    BUS.close()
    STORE.close()
    _DATA.cleanup()


def test_the_checks_are_all_of_them() -> None:
    assert set(CHECKS_RUN) >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_rest_v1_keeps_its_document(case: Any) -> None:
    case.call_and_validate(checks=RUN_CHECKS)
