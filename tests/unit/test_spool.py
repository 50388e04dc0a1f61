"""The spool keeps every appended envelope whole, even with several writer processes and a
writer killed mid-line, and its checkpoint survives as a whole file."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from snakedeck import envelope
from snakedeck.spool import (
    Checkpoint,
    SpoolError,
    SpoolReader,
    SpoolWriter,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)


def _event(i: int, run_id: str = "run1") -> dict:
    return envelope.make(run_id, "log", msg=f"line {i}", data={"i": i, "pad": "x" * (i % 300)})


def test_append_then_read_returns_every_event_with_offsets(tmp_path: Path) -> None:
    spool = tmp_path / "events.jsonl"
    with SpoolWriter(spool) as w:
        for i in range(5):
            w.append(_event(i))
    reader = SpoolReader(spool)
    items, bad = reader.read_from(0)
    assert bad == 0
    assert [e["data"]["i"] for _, e in items] == list(range(5))
    assert items[-1][0] == spool.stat().st_size == reader.end_offset
    # Reading from the middle resumes exactly after that line.
    rest, _ = reader.read_from(items[1][0])
    assert [e["data"]["i"] for _, e in rest] == [2, 3, 4]


def test_read_respects_limit_and_reports_where_to_resume(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    with SpoolWriter(spool) as w:
        for i in range(10):
            w.append(_event(i))
    reader = SpoolReader(spool)
    first, _ = reader.read_from(0, limit=4)
    assert [e["data"]["i"] for _, e in first] == [0, 1, 2, 3]
    second, _ = reader.read_from(reader.end_offset)
    assert [e["data"]["i"] for _, e in second] == list(range(4, 10))


def test_incomplete_last_line_is_left_for_later(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    with SpoolWriter(spool) as w:
        w.append(_event(0))
    full = envelope.dumps(_event(1)) + "\n"
    with open(spool, "a") as f:
        f.write(full[:20])
    reader = SpoolReader(spool)
    items, bad = reader.read_from(0)
    assert (len(items), bad) == (1, 0)
    with open(spool, "a") as f:
        f.write(full[20:])
    items, bad = reader.read_from(reader.end_offset)
    assert [e["data"]["i"] for _, e in items] == [1]


def test_writer_after_a_killed_writer_starts_on_a_fresh_line(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    with SpoolWriter(spool) as w:
        w.append(_event(0))
    with open(spool, "a") as f:
        f.write('{"v":1,"run_id":"run1","ty')  # killed mid-line
    with SpoolWriter(spool) as w:
        w.append(_event(1))
    items, bad = SpoolReader(spool).read_from(0)
    assert [e["data"]["i"] for _, e in items] == [0, 1]
    assert bad == 1


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    with SpoolWriter(spool) as w:
        w.append(_event(0))
    with open(spool, "a") as f:
        f.write("not json\n")
        f.write('{"v":2,"run_id":"run1"}\n')
    with SpoolWriter(spool) as w:
        w.append(_event(1))
    reader = SpoolReader(spool)
    items, bad = reader.read_from(0)
    assert [e["data"]["i"] for _, e in items] == [0, 1]
    assert bad == 2
    assert reader.end_offset == spool.stat().st_size


def _write_many(path: str, writer_id: int, count: int) -> None:
    with SpoolWriter(path) as w:
        for i in range(count):
            w.append(envelope.make("run1", "log", data={"w": writer_id, "i": i, "pad": "y" * 3000}))


def test_concurrent_processes_never_interleave_lines(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(spool), k, 300)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    items, bad = SpoolReader(spool).read_from(0)
    assert bad == 0
    for k in range(4):
        assert [e["data"]["i"] for _, e in items if e["data"]["w"] == k] == list(range(300))


def test_append_after_close_says_so(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path / "s.jsonl")
    w.close()
    w.close()  # idempotent
    with pytest.raises(SpoolError, match="closed"):
        w.append(_event(0))


def test_checkpoint_roundtrip_and_default(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    assert load_checkpoint(spool) == Checkpoint(0, 0)
    save_checkpoint(spool, 1234, 17)
    assert load_checkpoint(spool) == Checkpoint(1234, 17)
    assert checkpoint_path(spool).name == "s.jsonl.ckpt"
    assert load_checkpoint(checkpoint_path(spool)) == Checkpoint(1234, 17)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_corrupt_checkpoint_is_named_in_the_error(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    checkpoint_path(spool).write_text('{"offset": "x"')
    with pytest.raises(SpoolError, match=r"s\.jsonl\.ckpt is corrupt"):
        load_checkpoint(spool)
