"""Pure parts of the dashboard's file handling: Newer/Older paging, sizes, the base64 the browser
sends, and how a registered file is described."""

from __future__ import annotations

import base64

import pytest

from dashboard import file_cards, page_cursor, uploads
from dashboard.formatting import format_size
from snakedeck.service import Invalid
from snakedeck.settings import Settings


def test_the_cursor_walks_forward_back_and_restarts_on_a_new_filter():
    c = page_cursor.first()
    assert page_cursor.token(c) is None
    assert page_cursor.moved(c, "prev", "t1") is None  # nothing newer than the first page
    c2 = page_cursor.moved(c, "next", "t1")
    assert c2 == {"tokens": [None, "t1"], "index": 1} and page_cursor.token(c2) == "t1"
    assert page_cursor.moved(c2, "next", None) is None  # the last page
    c3 = page_cursor.moved(c2, "next", "t2")
    back = page_cursor.moved(c3, "prev", None)
    assert back is not None and page_cursor.token(back) == "t1"
    # Going forward again from a page visited before forgets the pages after it.
    assert page_cursor.moved(back, "next", "t9") == {"tokens": [None, "t1", "t9"], "index": 2}
    assert page_cursor.moved(c3, "", "t5") == page_cursor.first()
    assert page_cursor.count_text(c2, 25, 3, 28, "runs") == "26-28 of 28 runs"
    assert page_cursor.count_text(c, 25, 0, 0, "files") == "0 files"


@pytest.mark.parametrize("bad", [None, {}, {"tokens": []}, {"tokens": [None], "index": 3}, "x"])
def test_a_cursor_that_is_not_one_is_the_first_page(bad):
    assert page_cursor.valid(bad) == page_cursor.first()


def test_sizes_read_as_a_file_manager_shows_them():
    assert [format_size(n) for n in (0, 999, 1000, 51_200, 13_000_000, 1.2e9)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "51.2 kB",
        "13.0 MB",
        "1.2 GB",
    ]
    assert format_size(None) == "—" and format_size(-1) == "—"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 1000, uploads.DECODE_CHUNK + 5])
def test_the_browser_base64_decodes_chunk_by_chunk_to_the_same_bytes(size):
    data = bytes(i % 251 for i in range(size))
    body = base64.b64encode(data).decode()
    assert uploads.decoded_size(body) == size
    assert len(body) == uploads.encoded_size(size)
    assert b"".join(uploads.content_chunks(body)) == data
    assert uploads._body(f"data:text/csv;base64,{body}") == body
    assert uploads._body(f"data:;base64,{body}") == body  # a file the browser has no type for


def test_content_that_is_not_a_base64_data_url_is_refused():
    with pytest.raises(Invalid):
        uploads._body("hello")
    with pytest.raises(Invalid):
        uploads._body("data:text/plain,hello")
    with pytest.raises(Invalid):
        list(uploads.content_chunks("no*base64*here"))


def test_the_browser_limit_is_the_server_limit_capped():
    assert uploads.upload_limit(Settings(max_upload=10)) == 10
    assert uploads.upload_limit(Settings()) == uploads.BROWSER_UPLOAD_CAP
    text = uploads.too_large_text(300_000)
    assert "300.0 kB" in text and "snakedeck files upload" in text and "/api/v1/files" in text


DOC = {
    "file_id": "01abc",
    "name": "samples.csv",
    "kind": "table",
    "format": "csv",
    "size": 51,
    "sha256": "0a41256209ba" + "f" * 52,
    "created": "2026-05-02T10:00:00Z",
    "table": {
        "format": "csv",
        "columns": ["sample", "fastq1"],
        "rows": 7,
        "preview": [{"sample": f"s{i}", "fastq1": None} for i in range(7)],
    },
}


def test_a_file_is_described_by_its_facts_and_offered_by_name_kind_and_id():
    assert file_cards.facts(DOC) == "samples.csv · table (csv) · 51 B · sha256 0a41256209ba"
    assert file_cards.kind_text({"kind": "fasta", "format": "fasta"}) == "fasta"
    option = file_cards.option(DOC)
    assert option["value"] == "01abc"
    assert option["label"] == "samples.csv · table (csv) · 51 B · 2026-05-02 · 01abc"


def test_a_table_preview_says_how_much_it_shows():
    preview = file_cards.table_preview(DOC["table"])
    shape = preview.children[0].children
    assert shape == "7 rows · 2 columns: sample, fastq1, the first 5 shown"
    body = preview.children[1].children.children[1]
    assert len(body.children) == 5
    assert [td.children for td in body.children[0].children] == ["s0", ""]
    assert file_cards.table_preview(None) is None
