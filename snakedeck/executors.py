"""Snakemake executors by name: which names are safe, which are built in, which module a
plugin's is, and which executor one run uses.

In the core (not in ``runner/``) because both the workflow registry (a workflow's
``executor:``) and the settings (``SNAKEDECK_EXECUTOR``) check names, and the runner resolves a
run's executor from the two.
"""

from __future__ import annotations

import re
from typing import Final

NAME_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
"""A Snakemake executor plugin's name: it becomes a module name and a command-line argument."""
BUILT_IN: Final = frozenset({"", "local", "dryrun", "touch"})
"""Snakemake's own executors, no plugin needed ("": Snakemake's default, local)."""
LOCAL: Final = "local"


def plugin_module(executor: str) -> str:
    """The module ``snakemake-executor-plugin-<executor>`` installs."""
    return "snakemake_executor_plugin_" + executor.replace("-", "_")


def plugin_package(executor: str) -> str:
    """What to ``pip install`` for ``executor``."""
    return f"snakemake-executor-plugin-{executor}"


def resolve(site: str, workflow: str | None) -> str:
    """The executor of one run. The runner's ``SNAKEDECK_EXECUTOR``, when set, wins: the site
    decides where jobs run (``local`` included); else the workflow's own ``executor:``; else
    the local executor ("")."""
    if site:
        return site
    return workflow or ""
