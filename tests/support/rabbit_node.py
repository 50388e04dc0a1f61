"""A private, throw-away RabbitMQ node for tests that need a broker outage.

The machine's RabbitMQ (``rabbit@localhost`` on 5672) is shared by everything on the machine and
must never be stopped, so a fault test starts a node of its own: its own name, ports, mnesia and
log directories, config, cookie and ``HOME``, started and stopped with the binaries in
``/usr/lib/rabbitmq/bin`` directly (the ``/usr/sbin`` wrappers switch to the rabbitmq user and
would use the shared broker's cookie and node name). Every control command names the node.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path("/usr/lib/rabbitmq/bin")
SHARED = ("rabbit", 5672)


def available() -> bool:
    return (BIN / "rabbitmq-server").exists() and os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitNode:
    """``RabbitNode(tmp).start()`` … ``stop()`` / ``crash()`` / ``start()`` … ``purge()``."""

    def __init__(
        self,
        base: Path,
        name: str | None = None,
        port: int | None = None,
        *,
        listen: str = "127.0.0.1",
        prefix: Sequence[str] = (),
    ) -> None:
        """``listen``: the address clients connect to (Erlang distribution stays on loopback);
        ``prefix``: a command every server and control command runs under, e.g.
        ``ip netns exec NS`` for a node inside a network namespace."""
        self.listen = listen
        self.prefix = tuple(prefix)
        self.name = name or f"sdfault{secrets.token_hex(3)}"
        self.port = port or free_port()
        if self.name == SHARED[0] or self.port == SHARED[1]:
            raise ValueError("refusing to manage the shared broker")
        self.dist_port = free_port()
        self.base = Path(base) / self.name
        self.node = f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.listen}:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.base / f"{self.name}.pid"

    def _env(self) -> dict[str, str]:
        b = self.base
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(b / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=self.listen,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(b / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(b / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(b / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(b / "mnesia"),
            RABBITMQ_LOG_BASE=str(b / "log"),
            RABBITMQ_PID_FILE=str(self.pid_file),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        )
        return env

    def _write_files(self) -> None:
        b = self.base
        for sub in ("home", "mnesia", "log"):
            (b / sub).mkdir(parents=True, exist_ok=True)
        (b / "home").chmod(0o700)
        cookie = b / "home" / ".erlang.cookie"
        if not cookie.exists():  # made before server and CLI start, so they agree on it
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (b / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf
        (b / "enabled_plugins").write_text("[].\n")  # nothing on 15672 and friends
        (b / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.listen}:{self.port}\n"
            "loopback_users = none\nlog.console = false\n"
        )

    def _ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, str(BIN / "rabbitmqctl"), "-q", "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    def start(self, timeout: float = 90) -> RabbitNode:
        if self.pid() is not None:
            return self
        self._write_files()
        # A pid file left by the last run names a dead process: `rabbitmqctl wait` would read
        # it and could give up on the new node while it boots (CI saw "rabbit_is_not_running").
        self.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        subprocess.run(
            [*self.prefix, str(BIN / "rabbitmq-server"), "-detached"],
            env=self._env(),
            check=True,
            timeout=60,
        )
        waited = self._ctl("wait", "--timeout", str(int(timeout)), str(self.pid_file))
        # The open AMQP port is what the tests need; a failed wait is final only if the port
        # never opens either.
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.listen, self.port), 1),
            ):
                return self
            time.sleep(0.1)
        raise RuntimeError(
            f"RabbitMQ node {self.node} never opened port {self.port}"
            + (f"; rabbitmqctl wait: {waited.stderr[-2000:]}" if waited.returncode else "")
        )

    def stop(self, timeout: float = 60) -> None:
        pid = self.pid()
        if pid is None:
            return
        self._ctl("stop", timeout=timeout)
        self._wait_gone(pid, timeout)

    def crash(self) -> None:
        """SIGKILL: an outage without a clean shutdown (durable data survives)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10)

    def _wait_gone(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() == pid:
            time.sleep(0.1)
        if self.pid() == pid:
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def purge(self) -> None:
        """Away with the node and its data: nothing of it is kept, so no clean stop is owed
        (``rabbitmqctl stop`` can take minutes on a loaded machine)."""
        self.crash()
        shutil.rmtree(self.base, ignore_errors=True)
