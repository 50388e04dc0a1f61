"""A launch form generated from a workflow's config JSON Schema.

:func:`fields_from_schema` reads the schema into plain field specs; :func:`field_component`
renders one as a Mantine input (an array of scalars as a tag input, a description as
markdown); :func:`field_error` gives the inline message for one value (checked against the
property's own sub-schema with ``jsonschema``, so the message is the schema's rule, not a copy
of it); :func:`config_from_values` turns the form back into a config. The Service validates the
whole config again on submit and stays the authority.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dash_mantine_components as dmc
import jsonschema
from dash import dcc

FIELD_TYPE = "cfg"  # pattern-matching id type of every generated input (its ``value``)
BOOL_FIELD_TYPE = "cfgb"  # the same for switches, whose value is ``checked``


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    """``integer``, ``number``, ``string``, ``enum``, ``boolean``, ``list`` (an array of
    scalars) or ``json`` (anything else)."""
    label: str
    description: str = ""
    required: bool = False
    default: Any = None
    options: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    item_kind: str = ""
    """For a ``list``: ``integer``, ``number``, ``string`` or ``enum``, what each item is."""
    schema: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


SCALARS = ("integer", "number", "string", "boolean")


def _type(prop: Mapping[str, Any]) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def _item_kind(prop: Mapping[str, Any]) -> str:
    """What each item of an array property is, ``""`` unless a scalar a tag input can hold."""
    items = prop.get("items")
    if not isinstance(items, Mapping):
        return ""
    if "enum" in items and all(isinstance(o, str | int | float) for o in items["enum"]):
        return "enum"
    kind = _type(items)
    return kind if kind in ("integer", "number", "string") else ""


def _kind(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return "enum"
    kind = _type(prop)
    if kind in SCALARS:
        return str(kind)
    if kind == "array" and _item_kind(prop):
        return "list"
    return "json"


def fields_from_schema(schema: Mapping[str, Any] | None) -> list[FieldSpec]:
    """One field per top-level property, in the schema's order."""
    schema = schema or {}
    required = set(schema.get("required") or [])
    specs: list[FieldSpec] = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            prop = {}
        specs.append(
            FieldSpec(
                name=name,
                kind=_kind(prop),
                label=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                required=name in required,
                default=prop.get("default"),
                options=tuple(prop.get("enum") or ()),
                minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
                maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
                item_kind=_item_kind(prop) if _kind(prop) == "list" else "",
                schema=dict(prop),
            )
        )
    return specs


def _fid(name: str) -> dict[str, str]:
    return {"type": FIELD_TYPE, "name": name}


def description(text: str) -> Any:
    """A schema description as markdown (workflow authors write `code`, *emphasis*, links)."""
    if not text:
        return None
    return dcc.Markdown(text, className="sd-md", link_target="_blank")


# Mantine puts a description in a <p>; markdown brings its own paragraphs, so a <div> holds it.
DESCRIPTION_PROPS: dict[str, Any] = {"component": "div"}


def _list_component(spec: FieldSpec, common: dict[str, Any]) -> Any:
    """An array of scalars: a tag per item (a multi-select when the items are an enum)."""
    default = [str(v) for v in spec.default] if isinstance(spec.default, list) else []
    items = spec.schema.get("items") or {}
    if spec.item_kind == "enum":
        options = [{"value": json.dumps(o), "label": str(o)} for o in items.get("enum") or []]
        chosen = [json.dumps(v) for v in spec.default] if isinstance(spec.default, list) else []
        return dmc.MultiSelect(**common, data=options, value=chosen, clearable=True)
    kind = {"integer": "whole numbers", "number": "numbers"}.get(spec.item_kind, "values")
    return dmc.TagsInput(
        **common,
        value=default,
        placeholder=f"type {kind}, Enter after each",
        splitChars=[",", " "] if spec.item_kind != "string" else [","],
        clearable=True,
        acceptValueOnBlur=True,
    )


def field_component(spec: FieldSpec) -> Any:
    """The Mantine input for one field; its ``value`` is what :func:`config_from_values` reads."""
    common: dict[str, Any] = {
        "id": _fid(spec.name),
        "label": spec.label,
        "description": description(spec.description),
        "descriptionProps": DESCRIPTION_PROPS,
        "withAsterisk": spec.required,
    }
    if spec.kind in ("integer", "number"):
        extra: dict[str, Any] = {}
        if spec.minimum is not None:
            extra["min"] = spec.minimum
        if spec.maximum is not None:
            extra["max"] = spec.maximum
        return dmc.NumberInput(
            **common,
            value=spec.default if spec.default is not None else "",
            allowDecimal=spec.kind == "number",
            clampBehavior="none",
            **extra,
        )
    if spec.kind == "enum":
        return dmc.Select(
            **common,
            data=[{"value": json.dumps(o), "label": str(o)} for o in spec.options],
            value=json.dumps(spec.default) if spec.default is not None else None,
            clearable=not spec.required,
            allowDeselect=not spec.required,
        )
    if spec.kind == "boolean":
        return dmc.Switch(
            id={"type": BOOL_FIELD_TYPE, "name": spec.name},
            label=spec.label,
            description=description(spec.description),
            checked=bool(spec.default),
        )
    if spec.kind == "list":
        return _list_component(spec, common)
    if spec.kind == "string":
        return dmc.TextInput(**common, value=spec.default if spec.default is not None else "")
    return dmc.JsonInput(
        **common,
        value=json.dumps(spec.default, indent=2) if spec.default is not None else "",
        autosize=True,
        minRows=2,
        formatOnBlur=True,
    )


def form_value(spec: FieldSpec, value: Any) -> Any:
    """What the field's input holds to show the config value ``value`` (the inverse of
    :func:`value_of`): how a picked config file fills the form."""
    if spec.kind == "boolean":
        return bool(value)
    if value is None:
        return None if spec.kind == "enum" else ([] if spec.kind == "list" else "")
    if spec.kind == "enum":
        return json.dumps(value)
    if spec.kind in ("integer", "number"):
        return (
            value if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
        )
    if spec.kind == "string":
        return value if isinstance(value, str) else json.dumps(value)
    if spec.kind == "list":
        items = value if isinstance(value, list) else [value]
        return [json.dumps(v) if spec.item_kind == "enum" else str(v) for v in items]
    return json.dumps(value, indent=2)


_EMPTY = object()


def value_of(spec: FieldSpec, raw: Any) -> Any:
    """The config value of a form input, ``_EMPTY`` when left blank. Raises ``ValueError``
    for text that cannot be the field's type (e.g. broken JSON)."""
    if spec.kind == "boolean":
        return bool(raw)
    if raw is None or raw == "":
        return _EMPTY
    if spec.kind == "enum":
        return json.loads(raw) if isinstance(raw, str) else raw
    if spec.kind == "integer":
        number = float(raw)
        if not number.is_integer():
            raise ValueError("must be a whole number")
        return int(number)
    if spec.kind == "number":
        number = float(raw)
        return int(number) if number.is_integer() and isinstance(raw, int) else number
    if spec.kind == "string":
        return str(raw)
    if spec.kind == "list":
        return _list_value(spec, raw)
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None


def _item_value(kind: str, text: Any) -> Any:
    if kind == "enum":
        return json.loads(text) if isinstance(text, str) else text
    if kind in ("integer", "number"):
        number = float(str(text).strip())
        if kind == "integer":
            if not number.is_integer():
                raise ValueError(f"{text!r} is not a whole number")
            return int(number)
        return int(number) if number.is_integer() and "." not in str(text) else number
    return str(text)


ITEM_NOUN = {
    "integer": "a whole number",
    "number": "a number",
    "enum": "one of the choices",
    "string": "text",
}


def _list_value(spec: FieldSpec, raw: Any) -> Any:
    """A tag input's strings as the array the schema wants (``_EMPTY`` when no tag is set)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        return _EMPTY
    out = []
    for text in items:
        try:
            out.append(_item_value(spec.item_kind, text))
        except (ValueError, json.JSONDecodeError):
            raise ValueError(f"{text!r} is not {ITEM_NOUN[spec.item_kind]}") from None
    return out


def field_error(spec: FieldSpec, raw: Any) -> str | None:
    """The inline validation message for one input, or ``None`` when it is fine."""
    try:
        value = value_of(spec, raw)
    except ValueError as exc:
        return str(exc)
    if value is _EMPTY:
        return "required" if spec.required else None
    validator = jsonschema.Draft202012Validator(spec.schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: e.path)
    if not errors:
        return None
    first = errors[0]
    where = f"item {int(first.path[0]) + 1}: " if first.path and spec.kind == "list" else ""
    return where + _message(first)


def _message(error: jsonschema.ValidationError) -> str:
    """A short sentence a biologist can act on, from a jsonschema error."""
    v = error.validator
    val = error.validator_value
    if v == "minimum":
        return f"must be at least {val}"
    if v == "maximum":
        return f"must be at most {val}"
    if v == "exclusiveMinimum":
        return f"must be more than {val}"
    if v == "exclusiveMaximum":
        return f"must be less than {val}"
    if v == "maxLength":
        return f"at most {val} characters"
    if v == "minLength":
        return f"at least {val} characters"
    if v == "pattern":
        return f"does not match the expected pattern {val}"
    if v == "enum":
        return "must be one of " + ", ".join(map(str, val))
    if v == "type":
        return f"must be of type {val}"
    if v == "minItems":
        return f"at least {val} item{'s' if val != 1 else ''}"
    if v == "maxItems":
        return f"at most {val} item{'s' if val != 1 else ''}"
    if v == "uniqueItems":
        return "each value may appear only once"
    return error.message


def config_from_values(
    specs: list[FieldSpec], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(config, errors)``: blank optional fields are left out (the workflow's defaults
    apply); ``errors`` maps field names to their inline messages."""
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        raw = values.get(spec.name)
        message = field_error(spec, raw)
        if message:
            errors[spec.name] = message
            continue
        value = value_of(spec, raw)
        if value is not _EMPTY:
            config[spec.name] = value
    return config, errors


def parse_tags(text: str | None) -> tuple[dict[str, str], str | None]:
    """``key=value`` pairs, one per line or comma-separated; ``(tags, error message)``."""
    tags: dict[str, str] = {}
    for part in (text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return tags, f"{part!r}: write tags as key=value"
        tags[key.strip()] = value.strip()
    return tags, None
