"""Roles, origins, hosts, CORS, rate limits, security headers and the audit trail, through the
gateway as standalone mode builds it (in-process WSGI, real SQLite store, in-process bus).

Tokens: an admin token from ``SNAKEDECK_API_TOKENS``; ``viewer`` (read), ``ana`` and ``bob``
(submit) from a token file; ``carl`` (submit) made in the store, as ``snakedeck tokens create``
does. Each write endpoint is tried with each role, and the answer is what the role allows.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from snakedeck import auth
from snakedeck.auth import LOCAL_ADMIN, Principal, Role, new_token, token_hash
from snakedeck.settings import Settings
from snakedeck.store import AuditFilter
from tests.support.in_process import in_process_gateway

REPO = Path(__file__).resolve().parents[2]
ADMIN = "admin-secret-token"
TOKENS = {"viewer": ("read", new_token()), "ana": ("submit", new_token())}
TOKENS["bob"] = ("submit", new_token())


class Gateway:
    def __init__(self, app: Any, store: Any, bus: Any) -> None:
        self.app = app
        self.store = store
        self.bus = bus
        self.client: FlaskClient = app.test_client()
        self.service = app.extensions["snakedeck.service"]

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kw)

    def token(self, name: str) -> str:
        return ADMIN if name == "admin" else TOKENS[name][1]


def build(tmp: Path, **overrides: Any) -> Gateway:
    token_file = tmp / "tokens"
    token_file.write_text(
        "# name:role:sha256\n"
        + "".join(f"{n}:{role}:{token_hash(t)}\n" for n, (role, t) in TOKENS.items())
    )
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        "workflows_dir": REPO / "workflows",
        "namespace": "access",
        "api_tokens": (ADMIN,),
        "token_file": token_file,
        "allowed_origins": ("https://app.example",),
        "rate_submit": "1000/minute",
    }
    values.update(overrides)
    settings = Settings(**values)
    return Gateway(*in_process_gateway(settings))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = build(tmp_path_factory.mktemp("access"))
    yield g
    g.bus.close()
    g.store.close()


def submit(gw: Gateway, who: str) -> str:
    resp = gw.call("POST", "/api/v1/runs", gw.token(who), json={"workflow": "demo"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["run_id"]


def upload(gw: Gateway, who: str | None) -> Any:
    return gw.call(
        "POST",
        "/api/v1/files",
        gw.token(who) if who else None,
        data={"file": (io.BytesIO(b"a line\n"), "notes.txt")},
        content_type="multipart/form-data",
    )


def file_id(gw: Gateway) -> str:
    resp = upload(gw, "admin")
    assert resp.status_code == 201
    return resp.get_json()["file_id"]


# -- roles on every write ------------------------------------------------------------------------
# (endpoint, role) -> expected status. "own"/"other": a run ana submitted / bob submitted.
MATRIX = [
    # submit a run
    ("submit", None, 401),
    ("submit", "viewer", 403),
    ("submit", "ana", 201),
    ("submit", "admin", 201),
    # cancel
    ("cancel own", "viewer", 403),
    ("cancel own", "ana", 202),
    ("cancel other", "ana", 403),
    ("cancel other", "admin", 202),
    ("cancel own", None, 401),
    # rerun
    ("rerun own", "viewer", 403),
    ("rerun own", "ana", 201),
    ("rerun other", "ana", 403),
    ("rerun other", "admin", 201),
    # resume: the role and the owner are checked first; the queued run then cannot resume (409)
    ("resume own", None, 401),
    ("resume own", "viewer", 403),
    ("resume own", "ana", 409),
    ("resume other", "ana", 403),
    ("resume other", "admin", 409),
    # files
    ("upload", None, 401),
    ("upload", "viewer", 403),
    ("upload", "ana", 201),
    ("upload", "admin", 201),
    ("delete file", "viewer", 403),
    ("delete file", "ana", 403),
    ("delete file", "admin", 204),
    # dead letters and the audit trail: admin only
    ("list dead letters", "viewer", 403),
    ("list dead letters", "ana", 403),
    ("list dead letters", "admin", 200),
    ("replay dead letters", "ana", 403),
    ("replay dead letters", "admin", 200),
    ("purge dead letters", "ana", 403),
    ("purge dead letters", "admin", 200),
    ("read audit", "viewer", 403),
    ("read audit", "ana", 403),
    ("read audit", "admin", 200),
    # reads need a token too
    ("list runs", None, 401),
    ("list runs", "viewer", 200),
    ("metrics", None, 401),
    ("metrics", "viewer", 200),
]


@pytest.mark.parametrize(
    ("endpoint", "role", "status"), MATRIX, ids=[f"{e}-{r}" for e, r, _ in MATRIX]
)
def test_each_role_on_each_write(gw: Gateway, endpoint: str, role: str | None, status: int) -> None:
    token = gw.token(role) if role else None
    if endpoint == "submit":
        resp = gw.call("POST", "/api/v1/runs", token, json={"workflow": "demo"})
    elif endpoint.startswith(("cancel", "rerun", "resume")):
        run_id = submit(gw, "ana" if endpoint.endswith("own") else "bob")
        resp = gw.call("POST", f"/api/v1/runs/{run_id}/{endpoint.split()[0]}", token)
    elif endpoint == "upload":
        resp = upload(gw, role)
    elif endpoint == "delete file":
        resp = gw.call("DELETE", f"/api/v1/files/{file_id(gw)}", token)
    elif endpoint == "list dead letters":
        resp = gw.call("GET", "/api/v1/dead-letters", token)
    elif endpoint == "replay dead letters":
        resp = gw.call("POST", "/api/v1/dead-letters/replay", token, json={})
    elif endpoint == "purge dead letters":
        resp = gw.call("DELETE", "/api/v1/dead-letters", token)
    elif endpoint == "read audit":
        resp = gw.call("GET", "/api/v1/audit", token)
    elif endpoint == "list runs":
        resp = gw.call("GET", "/api/v1/runs", token)
    else:
        resp = gw.call("GET", "/metrics", token)
    assert resp.status_code == status, resp.get_data(as_text=True)
    if status >= 400:
        assert resp.mimetype == "application/problem+json"
        assert resp.get_json()["detail"]
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_run_records_the_token_name_and_lists_by_it(gw: Gateway) -> None:
    run_id = submit(gw, "ana")
    run = gw.call("GET", f"/api/v1/runs/{run_id}", gw.token("viewer")).get_json()
    assert run["user"] == "ana"
    mine = gw.call("GET", "/api/v1/runs", gw.token("viewer"), query_string={"user": "ana"})
    assert run_id in [r["run_id"] for r in mine.get_json()["runs"]]
    assert all(r["user"] == "ana" for r in mine.get_json()["runs"])
    # the display header is no identity when tokens are configured
    resp = gw.call(
        "POST",
        "/api/v1/runs",
        gw.token("bob"),
        json={"workflow": "demo"},
        headers={"X-Snakedeck-User": "ana"},
    )
    assert gw.service.get_run(resp.get_json()["run_id"])["user"] == "bob"


def test_every_write_is_audited_done_or_refused(gw: Gateway) -> None:
    run_id = submit(gw, "ana")
    assert gw.call("POST", f"/api/v1/runs/{run_id}/cancel", gw.token("bob")).status_code == 403
    assert gw.call("POST", f"/api/v1/runs/{run_id}/cancel", gw.token("ana")).status_code == 202
    page = gw.call("GET", "/api/v1/audit", ADMIN, query_string={"target": run_id}).get_json()
    seen = [(e["actor"], e["action"], e["result"], e["status"]) for e in page["entries"]]
    assert seen == [
        ("ana", "run.cancel", "ok", 202),
        ("bob", "run.cancel", "refused", 403),
        ("ana", "run.submit", "ok", 201),
    ]
    assert all(e["source"] == "127.0.0.1" and e["at"] for e in page["entries"])
    uploaded = upload(gw, "ana").get_json()["file_id"]
    gw.call("DELETE", f"/api/v1/files/{uploaded}", ADMIN)
    actions = [e["action"] for e in gw.store.list_audit(AuditFilter(target=uploaded)).items]
    assert actions == ["file.delete", "file.upload"]


def test_store_tokens_work_and_revocation_takes_effect_within_the_cache(gw: Gateway) -> None:
    token, doc = auth.create_token(gw.store, "carl", Role.SUBMIT, by=LOCAL_ADMIN)
    assert doc["sha256"] == token_hash(token) and token not in str(gw.store.list_tokens())
    time.sleep(auth.CACHE_SECONDS + 0.5)  # a lookup of carl may be cached as unknown
    resp = gw.call("POST", "/api/v1/runs", token, json={"workflow": "demo"})
    assert resp.status_code == 201
    assert gw.service.get_run(resp.get_json()["run_id"])["user"] == "carl"
    auth.revoke_token(gw.store, "carl", by=Principal("ops", Role.ADMIN))
    time.sleep(auth.CACHE_SECONDS + 0.5)
    assert gw.call("GET", "/api/v1/runs", token).status_code == 401
    changes = [e["action"] for e in gw.store.list_audit(AuditFilter(target="carl")).items]
    assert changes == ["token.revoke", "token.create"]


# -- cross-site writes, origins, hosts, CORS -------------------------------------------------------
def test_a_cross_site_form_post_cannot_cancel_or_rerun(tmp_path: Path) -> None:
    """No tokens configured (the default): everyone is the local admin, so only the origin
    checks stand between a web page the user opens and the gateway."""
    open_gw = build(tmp_path, api_tokens=(), token_file=None)
    try:
        run_id = submit(open_gw, "admin")
        evil = {"Origin": "https://evil.example"}
        form = open_gw.call(
            "POST",
            f"/api/v1/runs/{run_id}/cancel",
            data="x=1",
            content_type="application/x-www-form-urlencoded",
            headers=evil,
        )
        assert form.status_code == 403 and "evil.example" in form.get_json()["detail"]
        plain = open_gw.call(
            "POST",
            f"/api/v1/runs/{run_id}/rerun",
            data="x",
            content_type="text/plain",
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert plain.status_code == 403
        # without any browser header, a form encoding is still no JSON
        assert (
            open_gw.call(
                "POST",
                f"/api/v1/runs/{run_id}/cancel",
                data="x=1",
                content_type="application/x-www-form-urlencoded",
            ).status_code
            == 415
        )
        assert open_gw.service.get_run(run_id).get("cancel_requested") is not True
        assert open_gw.service.list_runs()["total"] == 1
        # the gateway's own origin (the dashboard) and a configured one may write
        own = open_gw.call(
            "POST", f"/api/v1/runs/{run_id}/cancel", headers={"Origin": "http://localhost"}
        )
        assert own.status_code == 202
        ws = open_gw.call("GET", "/ws/runs", headers=evil)
        assert ws.status_code == 403
        sio = open_gw.call("GET", "/socket.io/?EIO=4&transport=polling", headers=evil)
        assert sio.status_code == 403 and sio.mimetype == "application/problem+json"
    finally:
        open_gw.bus.close()
        open_gw.store.close()


def test_a_foreign_host_is_refused_everywhere(gw: Gateway) -> None:
    for path in ("/api/v1/runs", "/dashboard/", "/socket.io/?EIO=4&transport=polling", "/healthz"):
        resp = gw.client.get(path, headers={"Host": "rebound.evil.example"})
        assert resp.status_code == 400, path
        assert "rebound.evil.example" in resp.get_json()["detail"]
    assert gw.client.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_cors_for_a_configured_origin_only(gw: Gateway) -> None:
    pre = gw.client.options(
        "/api/v1/runs",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    resp = gw.call(
        "POST",
        "/api/v1/runs",
        gw.token("ana"),
        json={"workflow": "demo"},
        headers={"Origin": "https://app.example"},
    )
    assert resp.status_code == 201
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    other = gw.client.options(
        "/api/v1/runs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers


def test_security_headers_on_every_answer(gw: Gateway) -> None:
    for path, token in (
        ("/api/v1/runs", ADMIN),
        ("/dashboard/", ADMIN),
        ("/healthz", None),
        ("/api/v1/nothing-here", ADMIN),
        ("/apidocs/", None),
    ):
        resp = gw.call("GET", path, token)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
    # Answers Flask never sees: Socket.IO's polling transport, a Host the gateway refuses.
    polling = gw.call("GET", "/socket.io/?EIO=4&transport=polling", ADMIN)
    refused = gw.call("GET", "/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 400, refused.get_data(as_text=True)
    for resp in (polling, refused):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert len(resp.headers.getlist("X-Content-Type-Options")) == 1  # once, not twice
    dash_csp = gw.call("GET", "/dashboard/", ADMIN).headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in dash_csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'sha256-" in dash_csp


def test_the_dashboard_asks_a_browser_to_sign_in(gw: Gateway) -> None:
    resp = gw.client.get("/dashboard/")
    assert resp.status_code == 401 and 'Basic realm="snakedeck"' in resp.headers["WWW-Authenticate"]
    import base64

    basic = base64.b64encode(f"anyone:{TOKENS['viewer'][1]}".encode()).decode()
    assert (
        gw.client.get("/dashboard/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    )


def test_public_reads_still_need_tokens_to_write(tmp_path: Path) -> None:
    public = build(tmp_path, public_read=True)
    try:
        assert public.call("GET", "/api/v1/runs").status_code == 200
        assert public.call("GET", "/dashboard/").status_code == 200
        assert public.call("POST", "/api/v1/runs", json={"workflow": "demo"}).status_code == 401
        assert public.call("GET", "/api/v1/runs", "wrong-token").status_code == 401
    finally:
        public.bus.close()
        public.store.close()


def test_submissions_and_uploads_are_rate_limited_per_token(tmp_path: Path) -> None:
    limited = build(tmp_path, rate_submit="2/minute", rate_upload="1/minute")
    try:
        for _ in range(2):
            submit(limited, "ana")
        third = limited.call(
            "POST", "/api/v1/runs", limited.token("ana"), json={"workflow": "demo"}
        )
        assert third.status_code == 429 and third.mimetype == "application/problem+json"
        assert 1 <= int(third.headers["Retry-After"]) <= 60
        assert "ana" in third.get_json()["detail"]
        submit(limited, "bob")  # another token has its own budget
        assert upload(limited, "ana").status_code == 201
        assert upload(limited, "ana").status_code == 429
    finally:
        limited.bus.close()
        limited.store.close()


def test_only_an_uploader_gets_room_for_a_file_in_a_dashboard_callback(tmp_path: Path) -> None:
    """The dashboard's callback URL takes a file of up to 100 MB (base64) for someone who may
    upload; an anonymous reader's callback keeps the app's small body limit."""
    public = build(tmp_path, public_read=True)
    body = json.dumps({"output": "x.children", "inputs": [], "pad": "a" * 20_000_000})
    headers = {"Content-Type": "application/json"}
    try:
        path = "/dashboard/_dash-update-component"
        anonymous = public.call("POST", path, data=body, headers=headers)
        assert anonymous.status_code == 413, anonymous.text
        submitter = public.call("POST", path, TOKENS["ana"][1], data=body, headers=headers)
        assert submitter.status_code != 413
        assert submitter.status_code < 500, submitter.text
    finally:
        public.bus.close()
        public.store.close()
