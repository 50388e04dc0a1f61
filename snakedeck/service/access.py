"""Who may do what, checked once for REST and Dash alike, and every write in the audit trail."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from snakedeck.auth import Principal, Role
from snakedeck.service.errors import Forbidden, ServiceError


class Audits(Protocol):
    """What :func:`audited` needs of the service it decorates: a way to record an entry."""

    def audit(
        self,
        by: Principal,
        action: str,
        target: str | None,
        status: int,
        detail: str | None = None,
    ) -> None: ...


def require(by: Principal, role: Role, what: str) -> None:
    """:class:`Forbidden` unless ``by`` has ``role``."""
    if not by.may(role):
        raise Forbidden(
            f"{what} needs the {role.label} role; {by.name!r} has {by.role.label}",
        )


def require_owner(by: Principal, run: Mapping[str, Any], what: str) -> None:
    """A ``submit`` principal acts only on the runs it submitted; ``admin`` on any."""
    if by.may(Role.ADMIN):
        return
    require(by, Role.SUBMIT, what)
    owner = run.get("user")
    if owner != by.name:
        shown = repr(owner) if owner else "someone else"
        raise Forbidden(
            f"{what}: run {run.get('run_id')} was submitted by {shown}; a {by.role.label} "
            "token may only act on its own runs (an admin token may act on any)"
        )


def audited[**P, R](
    action: str, *, target: str | None = None, created: str | None = None, status: int = 200
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call of a write in the audit trail: who (``by``), what (``action``), on
    which thing (the ``target`` argument, or the ``created`` key of the answer), and how it
    ended (``status``, or the refusal's status and reason)."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            self: Audits = bound.arguments["self"]  # it records the audit trail
            by: Principal = bound.arguments["by"]
            what = bound.arguments.get(target) if target else None
            try:
                result = method(*args, **kwargs)
            except ServiceError as exc:
                self.audit(by, action, _shown(what), exc.status, exc.detail)
                raise
            except Exception as exc:
                self.audit(by, action, _shown(what), 500, f"failed: {type(exc).__name__}")
                raise
            made = result.get(created) if created and isinstance(result, Mapping) else None
            detail = f"from {what}" if made and what else None
            self.audit(by, action, _shown(made or what), status, detail)
            return result

        return wrapper

    return decorate


def _shown(value: object) -> str | None:
    return None if value is None else str(value)[:200]
