"""Where each problem of a refused submit is shown on the form.

The service names each problem's place (``field``): ``config.<key>…`` a config value,
``config_file``, ``inputs.<name>`` an input, ``inputs.<name>.row <n>.<column>`` a sample sheet's
cell, ``inputs.<name>.<column>`` a sheet's column, ``tags…``, ``workflow``. :func:`place` sorts
them onto the form; whatever names no part of it is listed in the form's own alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dash_mantine_components as dmc


@dataclass
class Placed:
    fields: dict[str, str] = field(default_factory=dict)
    """Config field name → message."""
    inputs: dict[str, str] = field(default_factory=dict)
    """Input name → message at its picker."""
    sheets: dict[str, list[str]] = field(default_factory=dict)
    """Input name → its sheet's problems, ``row 3, column sample: …``."""
    config_file: str | None = None
    tags: str | None = None
    workflow: str | None = None
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.fields, self.inputs, self.sheets, self.config_file, self.tags, self.workflow)
        ) or bool(self.general)

    def input_error(self, name: str) -> str | None:
        """The picker's own message: its problem, or a pointer to its sheet's list."""
        sheet = self.sheets.get(name) or []
        if not sheet:
            return self.inputs.get(name)
        count = f"{len(sheet)} problem{'s' if len(sheet) != 1 else ''} in this sheet (below)"
        return f"{self.inputs[name]}; {count}" if name in self.inputs else count


def _join(old: str | None, new: str) -> str:
    return f"{old}; {new}" if old else new


def _sheet_place(rest: str) -> str:
    """``row 3.fastq1`` → ``row 3, column fastq1``; ``fastq2`` → ``column fastq2``."""
    row, dot, column = rest.partition(".")
    if dot and row.startswith("row "):
        return f"{row}, column {column}"
    return f"column {rest}"


def _place_input(out: Placed, rest: str, message: str, inputs: set[str]) -> bool:
    name, dot, where = rest.partition(".")
    if name not in inputs:
        return False
    if not dot:
        out.inputs[name] = _join(out.inputs.get(name), message)
    else:
        out.sheets.setdefault(name, []).append(f"{_sheet_place(where)}: {message}")
    return True


def place(
    errors: Iterable[Mapping[str, Any]], *, fields: Iterable[str], inputs: Iterable[str]
) -> Placed:
    """Sort ``errors`` onto the form that has these config ``fields`` and ``inputs``."""
    out = Placed()
    field_names, input_names = set(fields), set(inputs)
    for error in errors:
        where = str(error.get("field") or "")
        message = str(error.get("message") or "")
        head, _, rest = where.partition(".")
        key = rest.split(".", 1)[0]
        if head == "config" and key in field_names:
            out.fields[key] = _join(out.fields.get(key), message)
        elif head == "inputs" and rest and _place_input(out, rest, message, input_names):
            pass
        elif where == "config_file":
            out.config_file = _join(out.config_file, message)
        elif head == "tags":
            out.tags = _join(out.tags, f"{rest}: {message}" if rest else message)
        elif where == "workflow":
            out.workflow = _join(out.workflow, message)
        else:
            out.general.append(f"{where}: {message}" if where else message)
    return out


def sheet_list(problems: list[str] | None) -> Any:
    """A sheet's problems, one line each (nothing when there are none)."""
    if not problems:
        return None
    return dmc.List(
        [dmc.ListItem(dmc.Text(p, size="sm", c="red")) for p in problems],
        size="sm",
        spacing=2,
        className="sd-sheet-errors",
    )
