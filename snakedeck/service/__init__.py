"""The one service layer: every business rule the REST handlers and the Dash callbacks share.

Views only translate HTTP (or Dash) to these calls and the typed errors back to problem details
(or messages). Nothing here knows about Flask. :class:`Service` is the sum of one part per
concern, each in its own module: :mod:`.runs` (submit, read, cancel, rerun, events, workflows),
:mod:`.notify` (notify targets, the delivery log),
:mod:`.jobs` (jobs, logs, outputs), :mod:`.resume`, :mod:`.files`, :mod:`.operations`
(runners, readiness, dead letters, the audit trail), over :mod:`.base`; the errors are in
:mod:`.errors`, the access rules in :mod:`.access`.

Every write takes the caller as ``by`` (a :class:`~snakedeck.auth.Principal`) and checks its
role here, once for REST and Dash alike: ``submit`` may submit, upload, and cancel, rerun or
resume the runs it submitted itself; ``admin`` may do everything, to anyone's runs, plus deletes
and dead letters. Each write is recorded in the audit trail, done or refused.
"""

from __future__ import annotations

from snakedeck.service.access import audited, require, require_owner
from snakedeck.service.base import (
    LOG_TAIL_BYTES,
    MAX_EVENTS_LIMIT,
    MAX_LOG_READ,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    RUNNER_LOST_BEATS,
)
from snakedeck.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    TooLarge,
    Unavailable,
    invalid,
    unavailable_on_backend_errors,
)
from snakedeck.service.files import Files
from snakedeck.service.jobs import Jobs
from snakedeck.service.notify import Notify
from snakedeck.service.operations import Operations
from snakedeck.service.resume import Resume
from snakedeck.service.runs import Runs, merge_config, new_run_id


class Service(Runs, Jobs, Resume, Files, Operations, Notify):
    """Runs, jobs, files and the operator's views, as the API and the dashboard see them."""


__all__ = [
    "LOG_TAIL_BYTES",
    "MAX_EVENTS_LIMIT",
    "MAX_LOG_READ",
    "MAX_TAGS",
    "MAX_TAG_KEY",
    "MAX_TAG_VALUE",
    "RUNNER_LOST_BEATS",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Service",
    "ServiceError",
    "TooLarge",
    "Unavailable",
    "audited",
    "invalid",
    "merge_config",
    "new_run_id",
    "require",
    "require_owner",
    "unavailable_on_backend_errors",
]
