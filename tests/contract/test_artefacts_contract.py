"""The run-artefacts part of the store contract (log streams, outputs, retention), on every
backend: SQLite with blobs on disk, MongoDB over the real wire protocol with GridFS."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from snakedeck.store import LogGap, Store, open_store
from snakedeck.store.artefacts import LOG_CHUNK, job_log_stream, parse_job_stream


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.drop()
    store.close()


def read_all(store: Store, run_id: str, stream: str, offset: int = 0) -> bytes:
    out = b""
    while True:
        part = store.read_log(run_id, stream, offset)
        assert part is not None
        if not part.data:
            return out
        out += part.data
        offset = part.next_offset


def test_a_log_stream_grows_by_offset_and_reads_back_from_any_offset(store: Store) -> None:
    assert store.read_log("r1", "snakemake") is None
    assert store.append_log("r1", "snakemake", 0, b"line 1\n", now=1.0) == 7
    assert store.append_log("r1", "snakemake", 7, b"line 2\nline 3\n", now=2.0) == 21
    assert read_all(store, "r1", "snakemake") == b"line 1\nline 2\nline 3\n"
    part = store.read_log("r1", "snakemake", 10, limit=5)
    assert part is not None and part.data == b"e 2\nl" and part.next_offset == 15
    assert part.size == 21 and part.start == 0
    end = store.read_log("r1", "snakemake", 21)
    assert end is not None and end.data == b"" and end.next_offset == 21
    info = store.log_stream("r1", "snakemake")
    assert info is not None and (info.size, info.start, info.updated_at) == (21, 0, 2.0)


def test_a_chunk_sent_again_is_a_no_op_and_a_gap_is_refused(store: Store) -> None:
    store.append_log("r1", "snakemake", 0, b"abcdef", now=1.0)
    assert store.append_log("r1", "snakemake", 0, b"abcdef", now=1.0) == 6  # re-sent whole
    assert store.append_log("r1", "snakemake", 3, b"defGHI", now=1.0) == 9  # overlapping
    assert read_all(store, "r1", "snakemake") == b"abcdefGHI"
    with pytest.raises(LogGap) as gap:
        store.append_log("r1", "snakemake", 20, b"later", now=1.0)
    assert gap.value.size == 9
    assert store.append_log("r1", "snakemake", 9, b"", now=1.0) == 9
    assert read_all(store, "r1", "snakemake") == b"abcdefGHI"


def test_big_appends_are_split_into_bounded_chunks(store: Store) -> None:
    data = bytes(range(256)) * (LOG_CHUNK // 256) * 2 + b"tail"
    store.append_log("r1", "s", 0, data, now=1.0)
    assert read_all(store, "r1", "s") == data
    part = store.read_log("r1", "s", LOG_CHUNK - 2, limit=4)
    assert part is not None and part.data == data[LOG_CHUNK - 2 : LOG_CHUNK + 2]


def test_the_cap_keeps_the_tail_and_says_what_was_dropped(store: Store) -> None:
    store.log_cap = 2 * LOG_CHUNK
    pieces = [bytes([65 + i]) * LOG_CHUNK for i in range(5)]
    offset = 0
    for piece in pieces:
        offset = store.append_log("r1", "s", offset, piece, now=1.0)
    info = store.log_stream("r1", "s")
    assert info is not None and info.size == 5 * LOG_CHUNK
    assert 3 * LOG_CHUNK >= info.size - info.start >= 2 * LOG_CHUNK
    part = store.read_log("r1", "s", 0, limit=10)
    assert part is not None and part.offset == info.start and part.start == info.start
    assert read_all(store, "r1", "s") == b"".join(pieces)[info.start :]
    tail = store.tail_log("r1", "s", 3)
    assert tail is not None and tail.data == b"EEE"


def test_streams_are_listed_by_prefix(store: Store) -> None:
    for stream in ("snakemake", job_log_stream(3, 1, "logs/a.log"), job_log_stream(3, 2, "b")):
        store.append_log("r1", stream, 0, b"x", now=1.0)
    store.append_log("r2", job_log_stream(3, 1, "logs/a.log"), 0, b"y", now=1.0)
    names = [i.stream for i in store.log_streams("r1", "job/3/")]
    assert names == ["job/3/1/logs/a.log", "job/3/2/b"]
    assert len(store.log_streams("r1")) == 3
    assert parse_job_stream("job/3/2/logs/x/y.log") == ("3", 2, "logs/x/y.log")
    assert parse_job_stream("snakemake") is None


def output(run_id: str, path: str, sha256: str, **fields: Any) -> dict[str, Any]:
    return {"run_id": run_id, "path": path, "kind": "table", "size": 3, "sha256": sha256,
            "stored_at": "2026-03-02T09:00:00.000Z", **fields}  # fmt: skip


def test_outputs_are_documents_naming_blobs(store: Store) -> None:
    blob = store.put_blob(io.BytesIO(b"a\tb\n"))
    store.put_output(output("r1", "summary.tsv", blob.sha256))
    store.put_output(output("r1", "counts/s1.tsv", blob.sha256, jobid="4"))
    assert [o["path"] for o in store.list_outputs("r1")] == ["counts/s1.tsv", "summary.tsv"]
    got = store.get_output("r1", "counts/s1.tsv")
    assert got is not None and got["jobid"] == "4" and "_id" not in got
    assert store.get_output("r1", "missing.tsv") is None and store.list_outputs("r2") == []
    for bad in ("/etc/passwd", "../x", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            store.put_output(output("r1", bad, blob.sha256))


def test_replacing_an_output_releases_its_old_blob(store: Store) -> None:
    old = store.put_blob(io.BytesIO(b"old"))
    new = store.put_blob(io.BytesIO(b"new"))
    store.put_output(output("r1", "x.txt", old.sha256))
    store.put_output(output("r1", "x.txt", new.sha256))
    assert not store.blob_exists(old.sha256) and store.blob_exists(new.sha256)
    got = store.get_output("r1", "x.txt")
    assert got is not None and got["sha256"] == new.sha256


def test_deleting_a_runs_artefacts_keeps_blobs_others_name(store: Store) -> None:
    shared = store.put_blob(io.BytesIO(b"shared"))
    own = store.put_blob(io.BytesIO(b"own"))
    registered = store.put_blob(io.BytesIO(b"registered"))
    store.create_file(
        {"file_id": "f1", "name": "x", "kind": "text", "format": "txt", "size": 10,
         "sha256": registered.sha256, "created": "2026-03-02T09:00:00.000Z", "tags": {}}
    )  # fmt: skip
    store.put_output(output("r1", "a.txt", shared.sha256))
    store.put_output(output("r1", "b.txt", own.sha256))
    store.put_output(output("r1", "c.txt", registered.sha256))
    store.put_output(output("r2", "a.txt", shared.sha256))
    store.append_log("r1", "snakemake", 0, b"log", now=1.0)
    store.append_log("r1", "job/1/1/l.log", 0, b"log", now=1.0)
    store.append_log("r2", "snakemake", 0, b"kept", now=1.0)

    deleted = store.delete_run_artefacts("r1")
    assert (deleted.streams, deleted.outputs, deleted.blobs) == (2, 3, 1)
    assert store.list_outputs("r1") == [] and store.log_streams("r1") == []
    assert store.read_log("r1", "snakemake") is None
    assert not store.blob_exists(own.sha256)
    assert store.blob_exists(shared.sha256) and store.blob_exists(registered.sha256)
    assert read_all(store, "r2", "snakemake") == b"kept"
    with store.open_blob(shared.sha256) as f:
        assert hashlib.sha256(f.read()).hexdigest() == shared.sha256
    # Once the last run naming it goes, so does the shared blob.
    assert store.delete_run_artefacts("r2").blobs == 1
    assert not store.blob_exists(shared.sha256)
