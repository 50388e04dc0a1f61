"""Probes and metrics: /healthz (the process answers), /readyz (broker and store reachable),
/metrics (Prometheus text)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from gateway.problems import problem

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    service = current_app.extensions["snakedeck.service"]
    hub = current_app.extensions["snakedeck.live"]
    checks = service.readiness()
    checks["updates"] = "ok" if hub.consuming else "the live-update consumer is not connected"
    try:
        runners = service.runners()
    except Exception as exc:  # noqa: BLE001 - the store check above already names the cause
        current_app.logger.warning("runner registry not read: %s", exc)
        runners = []
    if all(v == "ok" for v in checks.values()):
        return jsonify({"status": "ready", "checks": checks, "runners": runners})
    failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    resp = problem(
        503, "Not ready", f"a backing service is unreachable ({failing})", slug="not-ready"
    )
    body = resp.get_json()
    body.update(checks=checks, runners=runners)
    resp.set_data(current_app.json.dumps(body))
    return resp


@blueprint.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    _refresh()
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST.split(";")[0])


def _refresh() -> None:
    """Gauges describing shared state are read at scrape time, from the store and the broker."""
    from snakedeck import metrics as m
    from snakedeck.bus.base import BusError
    from snakedeck.store import StoreError

    service = current_app.extensions["snakedeck.service"]
    hub = current_app.extensions["snakedeck.live"]
    m.WEBSOCKET_CLIENTS.set(hub.clients)
    try:
        m.refresh_runs_by_state(service.store)
    except StoreError as exc:
        current_app.logger.warning("runs_by_state not refreshed: %s", exc)
    try:
        m.CONSUMER_LAG.set(service.bus.queue_depth("persist"))
    except BusError as exc:
        current_app.logger.warning("consumer_lag not refreshed: %s", exc)
