"""The Files page in headless Chromium against a real standalone gateway: a sample sheet dropped
and shown as parsed, the table of registered files, add from a URL, the browser's upload limit,
delete (and the refusal while a running run uses the file).

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from dashboard.pages.launch.inputs import MAX_OPTIONS
from gateway.app import MAX_BODY_BYTES
from tests.browser.conftest import FILES_MAX_UPLOAD
from tests.browser.helpers import (
    SCREENSHOTS,
    dict_id_css,
    drop_file,
    duplicate_ids,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.browser

SHEET = "sample,fastq1,fastq2\ns1,r1a,r1b\ns2,r2a,\ns3,r3a,r3b\n"


def files_api(gw: Any, **params: Any) -> list[dict[str, Any]]:
    resp = requests.get(f"{gw.url}/api/v1/files", params=params, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["files"]


def row_css(file_id: str) -> str:
    return dict_id_css("file-row", file_id=file_id)


def delete_from_page(d: Any, file_id: str) -> None:
    d.find_element(By.CSS_SELECTOR, dict_id_css("file-delete", file_id=file_id)).click()
    wait_for(d, lambda d: "sha256" in text_of(d, "#files-delete-what"), 10)
    wait_for(d, lambda d: d.find_element(By.ID, "files-delete-yes").is_displayed(), 10)
    d.find_element(By.ID, "files-delete-yes").click()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on this machine, serving ``tmp_path``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_a_dropped_sample_sheet_is_shown_as_parsed_then_deleted(files_gateway, browser, tmp_path):
    d = browser
    gw = files_gateway
    sheet = tmp_path / "samples.csv"
    sheet.write_text(SHEET)
    d.get(gw.url + "/dashboard/files")
    wait_for(d, lambda d: "No files match" in text_of(d, "#files-table"), 30)
    d.find_element(By.ID, "files-add-tags").send_keys("project=liver")
    drop_file(d, "#files-upload", sheet)
    # Right after the drop: what the service parsed, before anyone uses the sheet.
    added = wait_for(d, lambda d: (t := text_of(d, "#files-added")) and "Registered" in t and t, 30)
    assert "3 rows · 3 columns: sample, fastq1, fastq2" in added
    cells = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#files-added .sd-preview td")]
    assert cells == ["s1", "r1a", "r1b", "s2", "r2a", "", "s3", "r3a", "r3b"]
    [doc] = files_api(gw, q="samples.csv")
    assert doc["kind"] == "table" and doc["tags"] == {"project": "liver"}
    assert doc["file_id"] in added
    # The table lists it: name, kind, size, tag and the short sha256 of its content.
    row = wait_for(d, lambda d: (t := text_of(d, row_css(doc["file_id"]))) and t, 20)
    for shown in ("samples.csv", "table (csv)", f"{len(SHEET)} B", "project=liver"):
        assert shown in row, (shown, row)
    sha = d.find_element(By.CSS_SELECTOR, f"{row_css(doc['file_id'])} .sd-sha")
    assert sha.text == doc["sha256"][:12]
    download = d.find_element(By.CSS_SELECTOR, f"{row_css(doc['file_id'])} .sd-download")
    content = requests.get(download.get_attribute("href"), timeout=30)
    assert content.status_code == 200 and content.text == SHEET
    assert duplicate_ids(d) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    d.set_window_size(1366, 1250)  # the added file and the table below it in one picture
    d.save_screenshot(str(SCREENSHOTS / "files.png"))

    delete_from_page(d, doc["file_id"])
    wait_for(d, lambda d: "deleted" in text_of(d, "#files-msg"), 20)
    wait_for(d, lambda d: not d.find_elements(By.CSS_SELECTOR, row_css(doc["file_id"])), 20)
    gone = requests.get(f"{gw.url}/api/v1/files/{doc['file_id']}", timeout=30)
    assert gone.status_code == 404


def test_filters_add_from_url_and_the_browser_upload_limit(files_gateway, browser, served):
    d = browser
    gw = files_gateway
    base, folder = served
    (folder / "reference.fa").write_text(">chr1\nACGTACGT\n")
    too_big = folder / "big.txt"
    too_big.write_bytes(b"x" * (FILES_MAX_UPLOAD + 1))
    d.get(gw.url + "/dashboard/files")
    wait_for(d, lambda d: d.find_elements(By.ID, "files-url"), 30)
    d.find_element(By.ID, "files-url").send_keys(f"{base}/reference.fa")
    d.find_element(By.ID, "files-url-add").click()
    wait_for(d, lambda d: "reference.fa · fasta" in text_of(d, "#files-added"), 30)
    [ref] = files_api(gw, q="reference.fa")
    assert ref["source"] == "url" and ref["url"] == f"{base}/reference.fa"
    # A file over the limit never leaves the browser; the page says why and what to do.
    before = len(files_api(gw))
    drop_file(d, "#files-upload", too_big)
    note = wait_for(d, lambda d: (t := text_of(d, "#files-upload-note")) and t, 10)
    assert "big.txt (300.0 kB) is larger than the dashboard's upload limit of 300.0 kB" in note
    assert "snakedeck files upload" in note
    assert len(files_api(gw)) == before
    # Filters go through the service.
    wait_for(
        d,
        lambda d: ref["file_id"] in d.find_element(By.ID, "files-table").get_attribute("innerHTML"),
        20,
    )
    d.find_element(By.ID, "files-q").send_keys("no-such-file-xyz")
    wait_for(d, lambda d: "No files match" in text_of(d, "#files-table"), 10)


def test_a_file_a_running_run_uses_is_not_deleted(files_gateway, browser, tmp_path):
    d = browser
    gw = files_gateway
    extra = tmp_path / "extra.txt"
    extra.write_text("one more line\n")
    with extra.open("rb") as f:
        resp = requests.post(f"{gw.url}/api/v1/files", files={"file": f}, timeout=30)
    file_id = resp.json()["file_id"]
    run = requests.post(
        f"{gw.url}/api/v1/runs",
        json={
            "workflow": "demo",
            "config": {"samples": 1, "sleep": 30},
            "inputs": {"extra": file_id},
        },
        timeout=30,
    ).json()
    try:
        d.get(gw.url + "/dashboard/files")
        wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, row_css(file_id)), 30)
        delete_from_page(d, file_id)
        message = wait_for(d, lambda d: (t := text_of(d, "#files-msg")) and t, 20)
        assert f"file {file_id} is used by active run(s) {run['run_id']}; it stays" in message
        assert d.find_elements(By.CSS_SELECTOR, row_css(file_id))
    finally:
        requests.post(f"{gw.url}/api/v1/runs/{run['run_id']}/cancel", timeout=30)


def test_a_file_over_the_apps_request_limit_still_uploads_from_the_browser(
    gateway, browser, tmp_path
):
    """The gateway caps request bodies at 16 MiB; a dashboard upload may be larger (up to the
    browser limit, 100 MB here), and arrives byte for byte."""
    d = browser
    big = tmp_path / "big.fa"
    with big.open("wb") as f:
        f.write(b">big\n")
        while f.tell() < MAX_BODY_BYTES + 2_000_000:
            f.write((b"ACGT" * 20 + b"\n") * 1000)
    d.get(gateway.url + "/dashboard/files")
    drop_file(d, "#files-upload", big)
    added = wait_for(d, lambda d: (t := text_of(d, "#files-added")) and t, 120)
    assert "Registered" in added and "big.fa · fasta" in added, added
    [doc] = files_api(gateway, q="big.fa")
    assert doc["size"] == big.stat().st_size
    assert doc["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()


def test_a_picker_searches_the_whole_registry_when_it_lists_only_the_newest(files_gateway, browser):
    """More files fit an input than its picker lists: typing asks the service for them."""
    d = browser
    gw = files_gateway

    def register(name: str) -> str:
        resp = requests.post(
            f"{gw.url}/api/v1/files", files={"file": (name, b"a line\n")}, timeout=30
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["file_id"]

    needle = register("needle.txt")  # the oldest: not among the newest listed
    for i in range(MAX_OPTIONS):
        register(f"hay-{i:03d}.txt")
    d.get(gw.url + "/dashboard/launch?workflow=demo")
    field = wait_for(
        d,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, f"input{dict_id_css('input-pick', name='extra')}"
        ),
        30,
    )[0]
    wait_for(d, lambda d: "type to search all of them" in text_of(d, ".sd-input"), 10)
    field.click()
    field.send_keys("needle")
    option = wait_for(
        d,
        lambda d: [
            o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if "needle.txt" in o.text
        ],
        20,
    )[0]
    option.click()
    wait_for(d, lambda d: field.get_attribute("value").endswith(needle), 10)


def test_without_a_token_nothing_is_added_or_deleted(token_gateway, browser, tmp_path):
    d = browser
    gw = token_gateway
    sheet = tmp_path / "samples.csv"
    sheet.write_text(SHEET)
    with sheet.open("rb") as f:
        resp = requests.post(
            f"{gw.url}/api/v1/files",
            files={"file": ("kept.csv", f)},
            headers={"Authorization": "Bearer browser-s3cret"},
            timeout=30,
        )
    kept = resp.json()["file_id"]
    d.get(gw.url + "/dashboard/files")
    wait_for(d, lambda d: d.find_elements(By.CSS_SELECTOR, row_css(kept)), 30)
    drop_file(d, "#files-upload", sheet)
    wait_for(d, lambda d: "requires an API token" in text_of(d, "#files-added"), 20)
    delete_from_page(d, kept)
    wait_for(d, lambda d: "requires an API token" in text_of(d, "#files-msg"), 20)
    assert [f["file_id"] for f in files_api(gw)] == [kept]
