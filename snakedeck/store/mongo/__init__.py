"""The production store: MongoDB through pymongo.

Collections ``runs`` (``_id`` = run_id), ``jobs`` (``_id`` = ``run_id:jobid``) and ``events``
(``_id`` = ``run_id:seq``), so idempotent writes are plain ``_id`` upserts and duplicate-key
skips. Values every query filters or sorts on live in an ``_ix`` sub-document (see the index
helpers in :mod:`snakedeck.store.runs`); ``_id`` and ``_ix`` never leave this package. Each part
of the store is one module here (:mod:`.runs`, …) over the shared
:class:`~.connection.MongoConnection`. pymongo is imported only when this backend is used.
"""

from snakedeck.store.mongo.store import MongoStore

__all__ = ["MongoStore"]
