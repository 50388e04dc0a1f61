"""Limits every JSON value from outside must keep before snakedeck stores or echoes it.

Python's ``json`` accepts what the rest of the system cannot take: nesting deep enough to
overflow the interpreter's stack (or MongoDB's 100-level limit), integers too large for BSON or
SQLite, lone UTF-16 surrogates that no UTF-8 encoder will write, and strings or arrays large
enough to bloat every document they enter. :func:`parse` and :func:`check` refuse those with a
:class:`JsonLimitError` naming the field, so the callers (the consumer for envelopes, the
gateway for request bodies) answer with a clear error instead of failing later. Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

MAX_DEPTH: Final = 32
"""Nesting of objects and arrays (MongoDB allows 100; nothing snakedeck stores needs more)."""
MAX_INT: Final = 2**63 - 1
"""The largest integer BSON and SQLite store as a number."""


class JsonLimitError(ValueError):
    """A JSON value breaks a limit; ``field`` is the dotted path of the offending part."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field or "(root)"
        self.message = message
        super().__init__(f"{self.field}: {message}")


@dataclass(frozen=True)
class Limits:
    max_depth: int = MAX_DEPTH
    max_string: int = 1024 * 1024
    max_items: int = 100_000
    """Entries of one object or array."""


DEFAULT: Final = Limits()


def parse(raw: bytes | str, limits: Limits = DEFAULT) -> Any:
    """Decode JSON and :func:`check` it; every failure is a :class:`JsonLimitError` or a
    ``ValueError`` saying why it is not JSON."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonLimitError("", f"nested deeper than {limits.max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    check(value, limits)
    return value


def check(value: Any, limits: Limits = DEFAULT) -> None:
    """Enforce the limits on a decoded value; a broken one raises, naming its field.

    Every envelope the consumer reads goes through here, so the usual case (nothing broken)
    takes the fast walk that builds no field paths; only a value it refuses is walked again
    by :func:`_check_named`, which finds the field to name."""
    if not _within(value, limits):
        _check_named(value, limits)


def _within(value: Any, limits: Limits) -> bool:
    """Whether a value is surely within the limits (iterative, no paths, exact JSON types);
    False sends it to :func:`_check_named`, which decides (and names the field)."""
    max_depth, max_items, max_string = limits.max_depth, limits.max_items, limits.max_string
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        t = type(item)
        if t is dict:
            if depth >= max_depth or len(item) > max_items:
                return False
            children = item.values()
            for key in item:
                if type(key) is not str or not _string_ok(key, max_string):
                    return False
        elif t is list:
            if depth >= max_depth or len(item) > max_items:
                return False
            children = item
        else:
            children = (item,)
            depth -= 1
        for sub in children:
            st = type(sub)
            if st is str:
                if not _string_ok(sub, max_string):
                    return False
            elif st is int:
                if not -MAX_INT - 1 <= sub <= MAX_INT:
                    return False
            elif st is dict or st is list:
                stack.append((sub, depth + 1))
            elif not (sub is None or st is bool or st is float):
                return False  # not a plain JSON type: the careful walk decides
    return True


def _string_ok(text: str, max_string: int) -> bool:
    if len(text) > max_string:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_named(value: Any, limits: Limits) -> None:
    """Walk a decoded value (iteratively: no recursion to overflow) and enforce the limits."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item, path, limits)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                raise JsonLimitError(path, "integer is too large (at most 2^63-1 in magnitude)")
        elif isinstance(item, (dict, list)):
            if depth >= limits.max_depth:
                raise JsonLimitError(path, f"nested deeper than {limits.max_depth} levels")
            if len(item) > limits.max_items:
                raise JsonLimitError(path, f"more than {limits.max_items} entries")
            if isinstance(item, dict):
                for key, sub in item.items():
                    _check_string(key, path, limits, what="key")
                    stack.append((sub, f"{path}.{key}" if path else str(key), depth + 1))
            else:
                for i, sub in enumerate(item):
                    stack.append((sub, f"{path}.{i}" if path else str(i), depth + 1))


def _check_string(text: str, path: str, limits: Limits, what: str = "string") -> None:
    if len(text) > limits.max_string:
        raise JsonLimitError(path, f"{what} is longer than {limits.max_string} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonLimitError(path, f"{what} holds a lone surrogate (not valid Unicode)") from None
