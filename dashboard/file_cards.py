"""How a registered file looks in the dashboard: a line of facts, a sample sheet's preview, and
the option a picker offers for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import dash_mantine_components as dmc

from dashboard.formatting import format_size, format_when

PREVIEW_SHOWN: Final = 5
SHA_SHOWN: Final = 12
CELL_SHOWN: Final = 60


def kind_text(doc: Mapping[str, Any]) -> str:
    """``fasta`` or ``table (csv)``: the format only where it says more than the kind."""
    kind, fmt = str(doc.get("kind") or "other"), str(doc.get("format") or "")
    return kind if not fmt or fmt == kind else f"{kind} ({fmt})"


def facts(doc: Mapping[str, Any]) -> str:
    """``queries.fa · fasta · 1.2 kB · sha256 1a2b3c4d5e6f``."""
    parts = [
        str(doc.get("name") or doc.get("file_id") or ""),
        kind_text(doc),
        format_size(doc.get("size")),
        f"sha256 {str(doc.get('sha256') or '')[:SHA_SHOWN]}",
    ]
    return " · ".join(p for p in parts if p)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_SHOWN else text[: CELL_SHOWN - 1] + "…"


def table_preview(table: Mapping[str, Any] | None, rows: int = PREVIEW_SHOWN) -> Any:
    """A sample sheet as parsed on registration: its row count, columns and first rows."""
    if not table:
        return None
    columns = [str(c) for c in table.get("columns") or []]
    preview = list(table.get("preview") or [])[:rows]
    count = int(table.get("rows") or 0)
    head = dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in columns]))
    body = dmc.TableTbody(
        [dmc.TableTr([dmc.TableTd(_cell(r.get(c))) for c in columns]) for r in preview]
    )
    more = f", the first {len(preview)} shown" if count > len(preview) else ""
    return dmc.Stack(
        [
            dmc.Text(
                f"{count} row{'s' if count != 1 else ''} · {len(columns)} columns: "
                + ", ".join(columns)
                + more,
                size="sm",
                className="sd-table-shape",
            ),
            dmc.TableScrollContainer(
                dmc.Table([head, body], withTableBorder=True, striped=True, className="sd-preview"),
                minWidth=300,
            ),
        ],
        gap=4,
    )


def registered(doc: Mapping[str, Any], title: str = "Registered") -> Any:
    """What a user sees right after adding a file: its id, its facts and, for a table, the
    preview that shows it was read as meant."""
    return dmc.Alert(
        dmc.Stack(
            [
                dmc.Text(facts(doc), size="sm", className="sd-file-facts"),
                dmc.Text(
                    ["file id ", dmc.Code(str(doc.get("file_id") or ""))], size="xs", c="dimmed"
                ),
                table_preview(doc.get("table")),
            ],
            gap=6,
        ),
        title=title,
        color="teal",
        className="sd-registered",
    )


def option(doc: Mapping[str, Any]) -> dict[str, str]:
    """A picker's option: ``queries.fa · fasta · 1.2 kB · 2026-05-02 · <file id>`` (the id is
    part of the label so that searching by it finds the file)."""
    created = format_when(doc.get("created"))[:10]
    label = " · ".join(
        [
            str(doc.get("name") or ""),
            kind_text(doc),
            format_size(doc.get("size")),
            created,
            str(doc["file_id"]),
        ]
    )
    return {"value": str(doc["file_id"]), "label": label}
