"""A runner's identity: stable across restarts, unique among live runners.

A run's claim names the runner that holds its directory, and only that runner may recover the
run after a crash. So the identity must survive a restart (it lives in ``DATA_DIR``), yet two
live runners sharing a ``DATA_DIR`` must not share it. Each runner takes the first free *slot*:
an exclusive ``flock`` on ``DATA_DIR/runner-<n>.lock``, held for the process's life (the kernel
releases it when the process dies, however it dies), and reads or creates that slot's id.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAX_SLOTS: Final = 64


class IdentityError(RuntimeError):
    pass


@dataclass
class RunnerIdentity:
    runner_id: str
    host: str
    slot: int
    _lock_fd: int

    @classmethod
    def acquire(cls, data_dir: Path) -> RunnerIdentity:
        """Take the first free slot in ``data_dir`` (creating its id on first use)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        for slot in range(MAX_SLOTS):
            fd = os.open(data_dir / f"runner-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(_slot_id(data_dir, slot, host), host, slot, fd)
        raise IdentityError(f"{MAX_SLOTS} runners already share {data_dir}")

    def release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = -1


def _slot_id(data_dir: Path, slot: int, host: str) -> str:
    path = data_dir / f"runner-{slot}.id"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    short = "".join(c if c.isalnum() or c == "-" else "-" for c in host)[:40].strip("-") or "host"
    runner_id = f"{short}-{secrets.token_hex(4)}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(runner_id + "\n")
    os.replace(tmp, path)
    return runner_id
