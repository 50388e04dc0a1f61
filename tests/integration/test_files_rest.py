"""Registered files over real HTTP (gunicorn + gevent subprocess), on both stores: uploads
streamed into the store, URL fetches bounded in every way, and bad input answered with a clear
4xx problem that leaves the store as it was."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from snakedeck.store import FileFilter, RunFilter, Store, open_store
from tests.integration.test_gateway_rest import assert_problem
from tests.support.http_source import HttpSource
from tests.support.live_clients import GatewayProcess
from tests.support.services import AMQP_URL, tcp_reachable, unavailable, unique_namespace

MAX_UPLOAD = 256 * 1024
REF = b">chr1 test reference\n" + b"ACGTTGCA" * 40 + b"\n"


class Deployment:
    def __init__(self, settings: Settings, gateway: GatewayProcess, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.url = gateway.url

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.url}/api/v1{path}", timeout=60, **kw)

    def upload(self, name: str, data: bytes, **fields: Any) -> requests.Response:
        return self.api("POST", "/files", files={"file": (name, data)}, data=fields)

    def snapshot(self) -> tuple[list[str], int, list[str]]:
        files = self.store.list_files(FileFilter(), page_size=1000).items
        runs = self.store.list_runs(RunFilter(), page_size=500).items
        blobs = sorted({f["sha256"] for f in files if self.store.blob_exists(f["sha256"])})
        return [f["file_id"] for f in files], len(runs), blobs


@pytest.fixture(scope="module")
def source() -> Iterator[HttpSource]:
    s = HttpSource({"/data/ref.fa": REF, "/data/big.fa": b">x\n" + b"A" * MAX_UPLOAD}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Deployment]:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp("files") / "data",
        "workflows_dir": GatewayProcess.workflows_dir(),
        "namespace": unique_namespace(),
        "amqp_url": AMQP_URL,
        "max_upload": MAX_UPLOAD,
        "fetch_timeout": 3.0,
        "fetch_allow_private": True,
    }
    if request.param == "mongo":
        values["mongo_uri"] = request.getfixturevalue("mongo_uri")
        values["mongo_db"] = unique_namespace("sdfiles").replace("-", "_")
    settings = Settings(**values)
    with GatewayProcess(settings) as gateway:
        store = open_store(settings)
        try:
            yield Deployment(settings, gateway, store)
        finally:
            store.close()
    bus = open_bus(settings)
    bus.delete_topology()  # type: ignore[attr-defined]
    bus.close()


def test_upload_list_read_download_delete(deployment: Deployment) -> None:
    resp = deployment.upload("ref.fa", REF, tags="project=mouse")
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["name"] == "ref.fa" and doc["kind"] == "fasta" and doc["size"] == len(REF)
    assert doc["sha256"] == hashlib.sha256(REF).hexdigest() and doc["tags"] == {"project": "mouse"}
    assert resp.headers["Location"].endswith(f"/api/v1/files/{doc['file_id']}")
    assert deployment.api("GET", f"/files/{doc['file_id']}").json() == doc
    listed = deployment.api("GET", "/files", params={"kind": "fasta", "tag": "project"}).json()
    assert doc["file_id"] in [f["file_id"] for f in listed["files"]]
    content = deployment.api("GET", f"/files/{doc['file_id']}/content")
    assert content.status_code == 200 and content.content == REF
    assert content.headers["Content-Type"] == "application/octet-stream"
    assert content.headers["Content-Disposition"].startswith('attachment; filename="ref.fa"')
    assert deployment.api("DELETE", f"/files/{doc['file_id']}").status_code == 204
    assert_problem(deployment.api("GET", f"/files/{doc['file_id']}"), 404)
    assert not deployment.store.blob_exists(doc["sha256"])


def test_a_sheet_upload_answers_columns_rows_and_a_preview(deployment: Deployment) -> None:
    from openpyxl import Workbook

    book = Workbook()
    for row in [["sample", "reads"], ["s1", "f1"], ["s2", "f2"]]:
        book.active.append(row)
    xlsx = io.BytesIO()
    book.save(xlsx)
    for name, data in [("s.csv", b"sample,reads\ns1,f1\ns2,f2\n"), ("s.xlsx", xlsx.getvalue())]:
        resp = deployment.upload(name, data, kind="table")
        assert resp.status_code == 201, resp.text
        table = resp.json()["table"]
        assert table["columns"] == ["sample", "reads"] and table["rows"] == 2
        assert table["preview"] == [
            {"sample": "s1", "reads": "f1"},
            {"sample": "s2", "reads": "f2"},
        ]


def test_identical_content_is_stored_once(deployment: Deployment) -> None:
    data = b">dup\nACGT\n"
    a = deployment.upload("a.fa", data).json()
    b = deployment.upload("b.fa", data).json()
    assert a["file_id"] != b["file_id"] and a["sha256"] == b["sha256"]
    deployment.api("DELETE", f"/files/{a['file_id']}")
    assert deployment.store.blob_exists(a["sha256"])  # b still has it
    got = deployment.api("GET", f"/files/{b['file_id']}/content")
    assert got.content == data


def test_a_url_is_fetched_and_registered(deployment: Deployment, source: HttpSource) -> None:
    resp = deployment.api("POST", "/files", json={"url": source.url("/redirect/3")})
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["name"] == "ref.fa" and doc["kind"] == "fasta" and doc["source"] == "url"
    assert doc["sha256"] == hashlib.sha256(REF).hexdigest()
    named = deployment.api(
        "POST", "/files", json={"url": source.url("/data/ref.fa"), "name": "genome.fa"}
    ).json()
    assert named["name"] == "genome.fa"


BAD_UPLOADS = [
    # (what, file name, content, form fields, status, field)
    ("oversize", "big.fa", b">x\n" + b"A" * MAX_UPLOAD, {}, 413, "file"),
    ("far oversize", "big.fa", b">x\n" + b"A" * (MAX_UPLOAD + 1024 * 1024 + 10), {}, 413, "file"),
    ("dot-dot path", "../../x", b">x\nA\n", {}, 422, "file"),
    ("absolute path", "/etc/passwd", b">x\nA\n", {}, 422, "file"),
    ("windows path", "C:\\temp\\x.fa", b">x\nA\n", {}, 422, "file"),
    ("not a table", "s.bin", b"\x00\x01\x02\x03", {"kind": "table"}, 422, "file"),
    ("broken csv", "s.csv", b"a,a\n1,2\n", {}, 422, "file"),
    ("not fasta", "x.fa", b"hello\n", {}, 422, "file"),
    ("unknown kind", "x.fa", b">x\nA\n", {"kind": "pdf"}, 422, "kind"),
    ("bad tag", "x.fa", b">x\nA\n", {"tags": "no-equals"}, 422, "tags"),
    ("unknown workflow", "c.yaml", b"a: 1\n", {"workflow": "nope"}, 422, "workflow"),
]


@pytest.mark.parametrize(
    ("what", "name", "data", "fields", "status", "field"),
    BAD_UPLOADS,
    ids=[c[0] for c in BAD_UPLOADS],
)
def test_bad_uploads_are_problems_that_change_nothing(
    deployment: Deployment, what, name, data, fields, status, field
) -> None:
    before = deployment.snapshot()
    body = assert_problem(deployment.upload(name, data, **fields), status, field=field)
    data_dir = str(deployment.settings.data_dir)
    assert data_dir not in body["detail"] and "blobs/" not in body["detail"]  # no server path
    assert deployment.snapshot() == before


BAD_REQUESTS = [
    ("no file part", {"data": {"kind": "fasta"}, "files": {"other": ("x", b"")}}, 422, "other"),
    ("not multipart or JSON", {"data": b"x", "headers": {"Content-Type": "text/plain"}}, 415, None),
    ("JSON without url", {"json": {"name": "x"}}, 422, "url"),
    ("ftp url", {"json": {"url": "ftp://example.org/x.fa"}}, 422, "url"),
    ("file url", {"json": {"url": "file:///etc/passwd"}}, 422, "url"),
    ("unresolvable host", {"json": {"url": "http://no-such-host.invalid/x"}}, 422, "url"),
    ("bad name", {"json": {"url": "http://x.invalid/a", "name": "../x"}}, 422, "name"),
]


@pytest.mark.parametrize(
    ("what", "kwargs", "status", "field"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_registrations_are_problems(deployment: Deployment, what, kwargs, status, field):
    before = deployment.snapshot()
    assert_problem(deployment.api("POST", "/files", **kwargs), status, field=field)
    assert deployment.snapshot() == before


BAD_URLS = [
    ("stalls", "/stall", 422, "timed out"),
    ("drips", "/drip", 422, "timed out"),
    ("too big by its length", "/huge", 413, "larger than the limit"),
    ("too big while streaming", "/endless", 413, "larger than the limit"),
    ("too big a file", "/data/big.fa", 413, "larger than the limit"),
    ("redirects forever", "/loop", 422, "redirects more than 5 times"),
    ("missing", "/nothing-here", 422, "answered 404"),
]


@pytest.mark.parametrize(("what", "path", "status", "text"), BAD_URLS, ids=[c[0] for c in BAD_URLS])
def test_urls_that_cannot_be_fetched_are_problems(
    deployment: Deployment, source: HttpSource, what, path, status, text
) -> None:
    before = deployment.snapshot()
    body = assert_problem(
        deployment.api("POST", "/files", json={"url": source.url(path)}), status, field="url"
    )
    assert text in body["detail"]
    assert deployment.snapshot() == before


def test_unknown_files_are_404(deployment: Deployment) -> None:
    for method, path in [
        ("GET", "/files/nosuchfile"),
        ("GET", "/files/nosuchfile/content"),
        ("DELETE", "/files/nosuchfile"),
        ("GET", "/files/..%2F..%2Fetc"),
    ]:
        assert_problem(deployment.api(method, path), 404)
    assert_problem(deployment.api("GET", "/files", params={"kind": "pdf"}), 422, field="kind")


def test_private_addresses_are_refused_unless_allowed(tmp_path, source: HttpSource) -> None:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    settings = Settings(
        data_dir=tmp_path / "data",
        workflows_dir=GatewayProcess.workflows_dir(),
        namespace=unique_namespace(),
        amqp_url=AMQP_URL,
    )
    asked_before = len(source.requests)
    with GatewayProcess(settings) as gateway:
        for url in (source.url("/data/ref.fa"), "http://localhost:9/x", "http://[::1]/x"):
            resp = requests.post(gateway.url + "/api/v1/files", json={"url": url}, timeout=30)
            body = assert_problem(resp, 422, field="url")
            assert "private, loopback or reserved" in body["detail"]
        assert len(source.requests) == asked_before  # refused before connecting
    store = open_store(settings)
    try:
        assert store.list_files(FileFilter()).total == 0
    finally:
        store.close()


def test_a_larger_upload_arrives_byte_for_byte(deployment: Deployment) -> None:
    data = b">chr9\n" + b"ACGTTGCAAC\n" * 23_000  # line-dense, ~250 KiB, many reads on the way
    doc = deployment.upload("chr9.fa", data).json()
    assert doc["size"] == len(data) and doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert deployment.api("GET", f"/files/{doc['file_id']}/content").content == data
