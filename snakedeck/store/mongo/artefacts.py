"""Run artefacts in MongoDB: ``log_streams`` (one document per stream, ``_id`` =
``<run_id>/<stream>``), ``log_chunks`` (``_id`` = ``<run_id>/<stream>@<offset>``, so a chunk
written twice collides on its key) and ``outputs`` (``_id`` = ``<run_id>/<path>``; contents
are GridFS blobs). Run ids contain no ``/``, so these keys are unambiguous.

An append is: read the stream's size, insert the chunk keyed by that size, then raise the
size with ``$max``. One runner ships a run's streams, so there is one writer per stream; a
second writer racing it loses on the chunk's key and its append is a no-op.
"""

from __future__ import annotations

from typing import Any

from snakedeck.documents import OutputDoc
from snakedeck.store.artefacts import ArtefactStore, LogGap, LogStreamInfo
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors

HIDDEN = {"_id": 0}


def _key(run_id: str, stream: str) -> str:
    return f"{run_id}/{stream}"


def _info(doc: dict[str, Any]) -> LogStreamInfo:
    return LogStreamInfo(
        str(doc["run_id"]),
        str(doc["stream"]),
        int(doc["size"]),
        int(doc.get("start") or 0),
        float(doc.get("updated_at") or 0.0),
    )


class MongoArtefacts(MongoConnection, ArtefactStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._streams = self._db["log_streams"]
        self._chunks = self._db["log_chunks"]
        self._outputs = self._db["outputs"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP

        super()._create_schema()
        self._streams.create_index([("run_id", UP), ("stream", UP)])
        self._chunks.create_index([("run_id", UP), ("stream", UP), ("end", UP)])
        self._outputs.create_index([("run_id", UP), ("path", UP)])
        self._outputs.create_index([("sha256", UP)])

    # -- log streams ----------------------------------------------------------------------------
    @mongo_errors
    def log_stream(self, run_id: str, stream: str) -> LogStreamInfo | None:
        doc = self._streams.find_one({"_id": _key(run_id, stream)})
        return None if doc is None else _info(doc)

    @mongo_errors
    def log_streams(self, run_id: str, prefix: str = "") -> list[LogStreamInfo]:
        docs = self._streams.find({"run_id": run_id}).sort([("stream", 1)])
        return [_info(d) for d in docs if str(d["stream"]).startswith(prefix)]

    @mongo_errors
    def _append_chunk(
        self, run_id: str, stream: str, offset: int, data: bytes, *, now: float
    ) -> int:
        from pymongo.errors import DuplicateKeyError

        key = _key(run_id, stream)
        doc = self._streams.find_one({"_id": key})
        size, start = (int(doc["size"]), int(doc.get("start") or 0)) if doc else (0, 0)
        if offset > size:
            raise LogGap(stream, offset, size)
        piece = data[size - offset :]
        if not piece:
            return size
        try:
            self._chunks.insert_one(
                {
                    "_id": f"{key}@{size}",
                    "run_id": run_id,
                    "stream": stream,
                    "offset": size,
                    "end": size + len(piece),
                    "data": piece,
                }
            )
        except DuplicateKeyError:  # another writer stored this offset first: theirs stands
            current = self._streams.find_one({"_id": key})
            return int(current["size"]) if current else size
        size += len(piece)
        if size - start > self.log_cap:
            self._chunks.delete_many(
                {"run_id": run_id, "stream": stream, "end": {"$lte": size - self.log_cap}}
            )
            first = self._chunks.find_one(
                {"run_id": run_id, "stream": stream}, {"offset": 1}, sort=[("offset", 1)]
            )
            start = int(first["offset"]) if first else size
        self._streams.update_one(
            {"_id": key},
            {
                "$max": {"size": size, "start": start},
                "$set": {"updated_at": now},
                "$setOnInsert": {"run_id": run_id, "stream": stream},
            },
            upsert=True,
        )
        return size

    @mongo_errors
    def _read_chunks(
        self, run_id: str, stream: str, offset: int, limit: int
    ) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        cursor = self._chunks.find(
            {"run_id": run_id, "stream": stream, "end": {"$gt": offset}},
            {"offset": 1, "data": 1},
        ).sort([("offset", 1)])
        for doc in cursor:
            data = bytes(doc["data"])
            out.append((int(doc["offset"]), data))
            if int(doc["offset"]) + len(data) - offset >= limit:
                break
        return out

    @mongo_errors
    def _delete_logs(self, run_id: str) -> int:
        self._chunks.delete_many({"run_id": run_id})
        return int(self._streams.delete_many({"run_id": run_id}).deleted_count)

    # -- outputs --------------------------------------------------------------------------------
    @mongo_errors
    def list_outputs(self, run_id: str) -> list[OutputDoc]:
        return list(self._outputs.find({"run_id": run_id}, HIDDEN).sort([("path", 1)]))

    @mongo_errors
    def get_output(self, run_id: str, path: str) -> OutputDoc | None:
        return self._outputs.find_one({"_id": _key(run_id, path)}, HIDDEN)

    @mongo_errors
    def _replace_output(self, doc: OutputDoc) -> OutputDoc | None:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        key = _key(body["run_id"], body["path"])
        old = self._outputs.find_one({"_id": key}, HIDDEN)
        self._outputs.replace_one({"_id": key}, {"_id": key, **body}, upsert=True)
        return old

    @mongo_errors
    def _count_outputs_with_blob(self, sha256: str) -> int:
        return int(self._outputs.count_documents({"sha256": sha256}, limit=1))

    @mongo_errors
    def _delete_outputs(self, run_id: str) -> list[OutputDoc]:
        docs = list(self._outputs.find({"run_id": run_id}, HIDDEN))
        self._outputs.delete_many({"run_id": run_id})
        return docs
