"""The WES document this gateway serves: the shipped GA4GH files (``spec/``), bundled.

The spec is served as written, with only what serving it needs and what this server adds,
each marked ``x-snakedeck``:

* ``ServiceInfo``'s reference to service-info 1.0.0 (a remote URL) points at the shipped
  ``service-info-1.0.0.yaml``'s ``Service`` and ``ServiceType``, copied into the components;
* ``servers`` is this gateway's ``/ga4gh/wes/v1``;
* ``GET /runs`` documents the two filters REST v1 has, ``state`` and ``tag`` (extensions);
* ``GET /runs/{run_id}/tasks`` documents 400 (a ``page_token`` this server did not issue, a
  ``page_size`` below 1), and ``POST /runs`` 429 (the per-token submit rate limit).
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any, Final

import yaml

WES_FILE: Final = "wes-1.1.0.openapi.yaml"
SERVICE_INFO_FILE: Final = "service-info-1.0.0.yaml"
SERVICE_INFO_REF: Final = (
    "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/"
    "service-info.yaml#/components/schemas/Service"
)
PREFIX: Final = "/ga4gh/wes/v1"


@functools.cache
def shipped(name: str) -> dict[str, Any]:
    """One of the shipped spec files, parsed (cached: they never change while running)."""
    text = resources.files("gateway.wes").joinpath("spec", name).read_text(encoding="utf-8")
    return _string_keys(yaml.safe_load(text))


def _string_keys(value: Any) -> Any:
    """YAML reads ``200:`` as an int; JSON and OpenAPI tools want ``"200"``."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        "x-snakedeck": "added by this server",
    }


@functools.cache
def _document() -> dict[str, Any]:
    doc = copy.deepcopy(shipped(WES_FILE))
    info = shipped(SERVICE_INFO_FILE)["components"]["schemas"]
    schemas = doc["components"]["schemas"]
    for name in ("Service", "ServiceType"):
        assert name not in schemas, name
        schemas[name] = copy.deepcopy(info[name])
    (remote,) = [p for p in schemas["ServiceInfo"]["allOf"] if p.get("$ref") == SERVICE_INFO_REF]
    remote["$ref"] = "#/components/schemas/Service"
    doc["servers"] = [{"url": PREFIX}]
    runs = doc["paths"]["/runs"]["get"]
    runs["parameters"] += [
        {
            "name": "state",
            "in": "query",
            "description": "snakedeck extension: only runs in this state.",
            "schema": {"$ref": "#/components/schemas/State"},
            "x-snakedeck": "extension",
        },
        {
            "name": "tag",
            "in": "query",
            "description": "snakedeck extension: only runs with this tag, `key` or `key=value`.",
            "schema": {"type": "string"},
            "x-snakedeck": "extension",
        },
    ]
    tasks = doc["paths"]["/runs/{run_id}/tasks"]["get"]["responses"]
    tasks["400"] = _error("The request is malformed (page_token or page_size).")
    doc["paths"]["/runs"]["post"]["responses"]["429"] = _error(
        "Too many submissions for this token; retry after `Retry-After` seconds."
    )
    return doc


def document() -> dict[str, Any]:
    """A fresh copy of the served document."""
    return copy.deepcopy(_document())
