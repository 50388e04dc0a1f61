"""What operators look at: runners, readiness, dead letters, the audit trail."""

from __future__ import annotations

import time

from snakedeck.auth import Principal, Role
from snakedeck.documents import (
    AuditDoc,
    public,
)
from snakedeck.paging import MAX_PAGE_SIZE
from snakedeck.service.access import audited, require
from snakedeck.service.base import RUNNER_LOST_BEATS, Doc, ServiceBase, log
from snakedeck.service.errors import invalid, unavailable_on_backend_errors
from snakedeck.store import (
    AuditFilter,
)


class Operations(ServiceBase):
    """Runners, readiness, dead letters, audit."""

    def runners(self) -> list[Doc]:
        """Every runner the registry knows: ``live`` while it heartbeats, ``lost`` after
        :data:`RUNNER_LOST_BEATS` missed heartbeats (the reaper forgets it an hour later)."""
        now = time.time()
        lost_after = RUNNER_LOST_BEATS * self.settings.heartbeat_interval
        out: list[Doc] = []
        for beat in self.store.runner_beats():
            silent = max(0.0, now - beat.seen_at)
            out.append(
                {
                    "runner_id": beat.runner_id,
                    "host": beat.host,
                    "state": "lost" if silent > lost_after else "live",
                    "seconds_since_heartbeat": round(silent, 1),
                    "runs": beat.runs,
                    "max_runs": beat.max_runs,
                }
            )
        return out

    def readiness(self) -> dict[str, str]:
        """``{"store": "ok"|error, "bus": "ok"|error}``: what /readyz reports."""
        checks: dict[str, str] = {}
        for name, ping in (("store", self.store.ping), ("bus", self.bus.ping)):
            try:
                ping()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks

    @unavailable_on_backend_errors
    def dead_letters(self, limit: int = 100, *, by: Principal) -> Doc:
        """The oldest ``limit`` dead letters, described (reading removes none), and how many
        are waiting in all. Admins only (their bodies may hold anyone's data)."""
        require(by, Role.ADMIN, "reading dead letters")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise invalid("limit", f"must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        letters = [letter.describe() for letter in self.bus.dead_letters(limit)]
        waiting = self.bus.queue_depth(self.bus.topology.dead)
        return {"dead_letters": letters, "total": max(waiting, len(letters))}

    @audited("dead_letters.replay")
    @unavailable_on_backend_errors
    def replay_dead_letters(self, limit: int | None = None, *, by: Principal) -> Doc:
        """Send up to ``limit`` dead letters (all: ``None``), oldest first, back where they came
        from; one that fails again is dead-lettered again with its new reason."""
        require(by, Role.ADMIN, "replaying dead letters")
        if limit is not None and limit < 1:
            raise invalid("limit", f"must be at least 1, got {limit}")
        return {"replayed": self.bus.replay_dead_letters(limit)}

    @audited("dead_letters.purge")
    @unavailable_on_backend_errors
    def purge_dead_letters(self, *, by: Principal) -> Doc:
        """Delete every dead letter for good."""
        require(by, Role.ADMIN, "purging dead letters")
        return {"purged": self.bus.purge_dead_letters()}

    def audit(
        self,
        by: Principal,
        action: str,
        target: str | None,
        status: int,
        detail: str | None = None,
    ) -> None:
        """Record one write in the audit trail. A store failure is logged, never raised: the
        write itself has already succeeded or failed on its own."""
        entry: AuditDoc = {
            "actor": by.name,
            "role": by.role.label,
            "action": action,
            "target": target,
            "source": by.source,
            "result": "ok" if status < 400 else ("failed" if status >= 500 else "refused"),
            "status": status,
            "detail": detail[:500] if detail else None,
        }
        try:
            self.store.record_audit(entry)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.error("audit entry not written (%s %s by %s): %s", action, target, by.name, exc)

    @unavailable_on_backend_errors
    def list_audit(
        self,
        *,
        by: Principal,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> Doc:
        """The audit trail, newest first (admins only)."""
        require(by, Role.ADMIN, "reading the audit trail")
        page = self.store.list_audit(
            AuditFilter(actor=actor, action=action, target=target),
            page_size=page_size,
            page_token=page_token,
        )
        return {
            "entries": [public(e) for e in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }
