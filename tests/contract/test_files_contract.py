"""The blobs and files parts of the store contract, on every backend (SQLite with blobs on
disk, MongoDB over the real wire protocol with GridFS)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from snakedeck.store import (
    BadPageToken,
    BlobNotFound,
    BlobTooLarge,
    FileExists,
    FileFilter,
    Store,
    open_store,
)


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.drop()
    store.close()


def file_doc(file_id: str, created: str, sha256: str, **fields: Any) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "name": f"{file_id}.fa",
        "kind": "fasta",
        "format": "fasta",
        "size": 3,
        "sha256": sha256,
        "created": created,
        "tags": {},
        **fields,
    }


# -- blobs --------------------------------------------------------------------------------------


def test_a_blob_streams_in_and_out_by_its_sha256(store: Store) -> None:
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several chunks
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    info = store.put_blob(chunks)
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert store.blob_exists(info.sha256) and store.blob_size(info.sha256) == len(data)
    with store.open_blob(info.sha256) as f:
        assert f.read() == data


def test_identical_content_is_stored_once(store: Store) -> None:
    first = store.put_blob(io.BytesIO(b">seq\nACGT\n"))
    second = store.put_blob([b">seq\n", b"ACGT\n"])
    assert first == second
    assert store.delete_blob(first.sha256) is True
    assert not store.blob_exists(first.sha256)
    assert store.delete_blob(first.sha256) is False


def test_a_put_past_the_cap_stores_nothing(store: Store) -> None:
    data = b"x" * 5000
    with pytest.raises(BlobTooLarge) as info:
        store.put_blob(io.BytesIO(data), max_bytes=4999)
    assert info.value.limit == 4999
    assert not store.blob_exists(hashlib.sha256(data).hexdigest())
    assert store.put_blob(io.BytesIO(data), max_bytes=5000).size == 5000


@pytest.mark.parametrize("sha", ["0" * 64, "../../etc/passwd", "", "A" * 64])
def test_an_unknown_or_malformed_blob_is_not_found(store: Store, sha: str) -> None:
    with pytest.raises(BlobNotFound):
        store.open_blob(sha)
    assert not store.blob_exists(sha) and store.blob_size(sha) is None
    assert store.delete_blob(sha) is False


def test_an_empty_blob(store: Store) -> None:
    info = store.put_blob([])
    assert info.size == 0 and info.sha256 == hashlib.sha256(b"").hexdigest()
    with store.open_blob(info.sha256) as f:
        assert f.read() == b""


# -- files --------------------------------------------------------------------------------------


@pytest.fixture
def some_files(store: Store) -> Store:
    a = store.put_blob([b">a\nAC\n"]).sha256
    b = store.put_blob([b"sample,fastq1\n"]).sha256
    store.create_file(file_doc("f1", "2026-03-01T10:00:00.000Z", a, tags={"project": "Mouse"}))
    store.create_file(file_doc("f2", "2026-03-01T11:00:00.000Z", b, kind="table", name="Sheet.csv"))
    store.create_file(
        file_doc("f3", "2026-03-01T12:00:00.000Z", a, kind="config", workflow="blast")
    )
    store.create_file(file_doc("f4", "2026-03-01T12:00:00.000Z", b, tags={"project": "Fly"}))
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (FileFilter(), ["f4", "f3", "f2", "f1"]),
        (FileFilter(kind="fasta"), ["f4", "f1"]),
        (FileFilter(kind="table"), ["f2"]),
        (FileFilter(workflow="blast"), ["f3"]),
        (FileFilter(tag="project"), ["f4", "f1"]),
        (FileFilter(tag="project=Fly"), ["f4"]),
        (FileFilter(q="sheet"), ["f2"]),
        (FileFilter(q="mouse"), ["f1"]),
        (FileFilter(kind="fastq"), []),
    ],
)
def test_files_list_newest_first_with_filters(
    some_files: Store, filters: FileFilter, expected: list[str]
) -> None:
    page = some_files.list_files(filters)
    assert [f["file_id"] for f in page.items] == expected
    assert page.total == len(expected) and page.next_page_token is None


def test_files_paginate_by_keyset(some_files: Store) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = some_files.list_files(FileFilter(), page_size=1, page_token=token)
        seen += [f["file_id"] for f in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["f4", "f3", "f2", "f1"]
    with pytest.raises(BadPageToken):
        some_files.list_files(FileFilter(), page_token="bm90LWEtdG9rZW4")


def test_a_file_reads_back_without_storage_internals(some_files: Store) -> None:
    doc = some_files.get_file("f2")
    assert doc is not None and doc["name"] == "Sheet.csv" and doc["kind"] == "table"
    assert not any(k.startswith("_") for k in doc)
    assert some_files.get_file("nope") is None
    with pytest.raises(FileExists):
        some_files.create_file(file_doc("f2", "2026-03-02T00:00:00.000Z", doc["sha256"]))
    assert some_files.get_file("f2")["name"] == "Sheet.csv"


def test_deleting_the_last_file_naming_a_blob_deletes_the_blob(some_files: Store) -> None:
    sha = some_files.get_file("f1")["sha256"]
    assert some_files.delete_file("f1")["file_id"] == "f1"
    assert some_files.blob_exists(sha)  # f3 still names it
    assert some_files.release_blob(sha) is False
    some_files.delete_file("f3")
    assert not some_files.blob_exists(sha)
    assert some_files.delete_file("f3") is None
    assert [f["file_id"] for f in some_files.list_files(FileFilter(tag="project")).items] == ["f4"]


def test_a_blob_no_file_names_can_be_released(store: Store) -> None:
    sha = store.put_blob([b"orphan"]).sha256
    assert store.release_blob(sha) is True and not store.blob_exists(sha)


def test_a_blob_a_private_workflow_names_is_kept(some_files: Store) -> None:
    """A run's attached workflow (WES attachments) names blobs: a file of the same content
    deleted, or a refused upload of it released, must not take them from the run."""
    sha = some_files.get_file("f2")["sha256"]
    kept = some_files.put_blob([b"rule all:\n"]).sha256
    bundle = {"source": "attachment", "entry": "Snakefile",
              "files": [{"path": "Snakefile", "sha256": kept, "size": 10},
                        {"path": "s.csv", "sha256": sha, "size": 14}]}  # fmt: skip
    some_files.create_run(
        {"run_id": "r9", "submitted_at": "2026-03-01T10:00:00.000Z", "workflow_bundle": bundle}
    )
    assert some_files.release_blob(kept) is False and some_files.blob_exists(kept)
    some_files.delete_file("f2")
    assert some_files.blob_exists(sha)
    other = some_files.put_blob([b"not named"]).sha256
    assert some_files.release_blob(other) is True


def test_runs_using_a_file_are_the_active_ones_naming_it(some_files: Store) -> None:
    store = some_files
    for run_id, state, file_ids in [
        ("r1", "QUEUED", ["f1", "f2"]),
        ("r2", "RUNNING", ["f2"]),
        ("r3", "COMPLETE", ["f1"]),
        ("r4", "CANCELING", ["f1"]),
    ]:
        store.create_run(
            {"run_id": run_id, "submitted_at": "2026-03-01T10:00:00.000Z", "file_ids": file_ids}
        )
        store.update_run(run_id, {"state": state})
    assert store.runs_using_file("f1") == ["r1", "r4"]
    assert store.runs_using_file("f2") == ["r1", "r2"]
    assert store.runs_using_file("f3") == []
