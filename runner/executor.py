"""Which Snakemake executor runs a run's jobs, as Snakemake command-line arguments.

The runner stays on the submit host and supervises Snakemake there; with an executor plugin
(``snakemake-executor-plugin-slurm``: ``pip install snakedeck[slurm]``) Snakemake submits the
jobs to the cluster. The choice is the runner's ``SNAKEDECK_EXECUTOR`` when set, else the
workflow's ``executor:`` (:func:`snakedeck.executors.resolve`); a workflow says how its jobs run
there in its own profile ``profiles/<executor>/config.yaml`` (default resources, status-check
pace), a site's account and partition go in ``SNAKEDECK_PROFILE``.
"""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

from snakedeck.executors import BUILT_IN, plugin_module, plugin_package


class ExecutorError(RuntimeError):
    """The chosen executor cannot be used on this runner (its plugin is not installed)."""


def executor_args(workflow_dir: Path, executor: str, profile: Path | None) -> list[str]:
    """``--workflow-profile``/``--executor`` and ``--profile`` for one run of the workflow in
    ``workflow_dir``; nothing for the local executor without a profile (today's behaviour)."""
    args: list[str] = []
    if profile is not None:
        if not (profile / "config.yaml").is_file():
            raise ExecutorError(f"SNAKEDECK_PROFILE {profile} has no config.yaml")
        args += ["--profile", str(profile)]
    if executor in BUILT_IN:
        return args
    if importlib.util.find_spec(plugin_module(executor)) is None:
        raise ExecutorError(
            f"the Snakemake executor plugin for {executor!r} is not installed on this runner "
            f"(pip install {plugin_package(executor)})"
        )
    own = workflow_dir / "profiles" / executor
    if (own / "config.yaml").is_file():
        return [*args, "--workflow-profile", str(own), "--executor", executor]
    return [*args, "--executor", executor]


def stop_signal(executor: str) -> signal.Signals:
    """What stops a run's Snakemake at once. SIGTERM makes Snakemake wait for its running
    jobs, which the local executor's jobs never do (they get the group's SIGTERM too); jobs on
    a cluster are outside the group, so there SIGINT: Snakemake then cancels them through its
    executor (``scancel`` for SLURM) before it exits."""
    return signal.SIGTERM if executor in BUILT_IN else signal.SIGINT
