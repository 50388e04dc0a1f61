"""No function in dashboard/ is longer than 80 lines: a page is built from parts with names."""

from __future__ import annotations

import ast
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
MAX_LINES = 80


def long_functions() -> list[str]:
    found = []
    for path in sorted(DASHBOARD.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                lines = node.end_lineno - first + 1
                if lines > MAX_LINES:
                    name = getattr(node, "name", "<lambda>")
                    found.append(f"{path.relative_to(DASHBOARD)}:{node.lineno} {name} ({lines})")
    return found


def test_every_python_file_of_the_dashboard_is_checked():
    assert len(list(DASHBOARD.rglob("*.py"))) >= 15  # the walk does reach the pages


def test_no_function_is_longer_than_80_lines():
    assert long_functions() == []
