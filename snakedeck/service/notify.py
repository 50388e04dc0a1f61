"""Notifications as the APIs see them: checking the targets a submit names (REST ``notify``,
or the WES tag :data:`~snakedeck.notify.NOTIFY_TAG`) and reading a run's delivery log.

Targets are saved apart from the run (:mod:`snakedeck.store.deliveries`); answers show them
through :meth:`~snakedeck.notify.NotifyTarget.public` only, so a secret never leaves the
server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from snakedeck import notify
from snakedeck.notify import NOTIFY_TAG, NotifyError, NotifyTarget
from snakedeck.service.base import Doc, ServiceBase
from snakedeck.service.errors import Invalid, invalid, unavailable_on_backend_errors
from snakedeck.settings import Settings


def _invalid(exc: NotifyError) -> Invalid:
    return invalid(exc.field, exc.message)


def checked_targets(
    settings: Settings,
    targets: Sequence[NotifyTarget | Mapping[str, Any]] | None,
    tags: Mapping[str, Any] | None,
) -> tuple[list[NotifyTarget], dict[str, Any]]:
    """The run's targets (the ``notify`` list, then those of the tag) checked on this server,
    and the tags without the notify tag (it may hold secrets: it is never kept as a tag)."""
    rest = dict(tags or {})
    found: list[NotifyTarget] = []
    try:
        if targets:
            found += notify.parse_targets(
                [t.model_dump() if isinstance(t, NotifyTarget) else t for t in targets]
            )
            notify.check_targets(found, settings)
        if NOTIFY_TAG in rest:
            value = rest.pop(NOTIFY_TAG)
            if not isinstance(value, str):
                raise NotifyError(f"tags.{NOTIFY_TAG}", "must be a string")
            tagged = notify.targets_from_tag(value)
            notify.check_targets(tagged, settings, f"tags.{NOTIFY_TAG}")
            found += tagged
    except NotifyError as exc:
        raise _invalid(exc) from None
    if len(found) > notify.MAX_TARGETS:
        raise invalid("notify", f"at most {notify.MAX_TARGETS} targets")
    return found, rest


class Notify(ServiceBase):
    """Notify targets and the delivery log."""

    def notify_targets_from_tag(self, value: str) -> list[NotifyTarget]:
        """The targets a ``snakedeck.notify`` tag names, checked on this server (Invalid
        naming the problem). ``submit_run`` does this itself for a tag of that name."""
        try:
            targets = notify.targets_from_tag(value)
            notify.check_targets(targets, self.settings, f"tags.{NOTIFY_TAG}")
        except NotifyError as exc:
            raise _invalid(exc) from None
        return targets

    @unavailable_on_backend_errors
    def list_deliveries(
        self, run_id: str, *, page_size: int = 50, page_token: str | None = None
    ) -> Doc:
        """The run's targets (as answers show them: no secrets) and its delivery log, oldest
        attempt first; whoever may read the run may read these."""
        self._run(run_id)
        targets = [NotifyTarget.model_validate(t) for t in self.store.notify_targets(run_id)]
        seen = {t.target_id for t in targets}
        defaults = [t for t in notify.default_targets(self.settings) if t.target_id not in seen]
        page = self.store.list_deliveries(run_id, page_size=page_size, page_token=page_token)
        return {
            "targets": [t.public() for t in targets]
            + [{**t.public(), "default": True} for t in defaults],
            "deliveries": [dict(d) for d in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }
