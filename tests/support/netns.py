"""Test hosts as Linux network namespaces: one bridge in the root namespace, one veth per host.

Every host (``ip netns add``) gets its own network stack (loopback up, one address on a private
/24 chosen per test run); the root namespace holds the bridge and the subnet's first address,
so the test process reaches every host as a client would from outside. Names carry a random
tag, so parallel runs never collide, and :meth:`Network.close` removes everything it made,
the processes left in its namespaces included (a runner's Snakemake outlives the runner).
A host is "cut off" by taking its veth link down: its processes live on, unreachable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no permission)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def check_available() -> None:
    """Raise :class:`NetnsUnavailable` unless a namespace, a veth pair and a bridge can be
    made (and remove them again)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root and iproute2")
    probe = f"sdprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
        _ip("link", "add", f"{probe}b", "type", "bridge")
    except RuntimeError as exc:
        raise NetnsUnavailable(str(exc)) from exc
    finally:
        _ip("link", "del", f"{probe}b", check=False)
        _ip("netns", "del", probe, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.0.0.0/8 no interface of the root namespace is on."""
    used = _ip("-4", "-o", "addr", "show").stdout
    nets = [ipaddress.ip_interface(w).network for w in used.split() if "/" in w and w[0].isdigit()]
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(n) for n in nets):
            return net
    raise RuntimeError("no free private /24 for the test network")


@dataclass
class Host:
    """One namespace: ``prefix`` runs a command on it, ``address`` reaches it."""

    name: str
    address: str
    link: str  # the root namespace's end of its veth pair

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)

    def cut_off(self) -> None:
        """Unplug the host: every packet to or from it is dropped from now on."""
        _ip("link", "set", self.link, "down")

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]


class Network:
    """``Network().add("infra")`` … ``close()``; every name carries the run's tag."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.subnet = _free_subnet()
        self._addresses = iter(self.subnet.hosts())
        gateway = next(self._addresses)
        self.bridge = f"sdbr{self.tag}"
        self.hosts: dict[str, Host] = {}
        self._made = 0
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add(self, role: str) -> Host:
        index, self._made = self._made, self._made + 1  # link names never reused
        name = f"sd{self.tag}-{role}"
        outer, inner = f"sdv{self.tag}{index}", f"sdp{self.tag}{index}"
        address = str(next(self._addresses))
        _ip("netns", "add", name)
        host = Host(name, address, outer)
        self.hosts[role] = host  # from here on close() removes it
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", name)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        inside = ("-n", name)
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inner)
        _ip(*inside, "link", "set", inner, "up")
        return host

    def remove(self, role: str) -> None:
        """The host's processes killed (all of them: a runner's Snakemake outlives it), then
        its namespace and link gone."""
        host = self.hosts.pop(role, None)
        if host is None:
            return
        for pid in host.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and host.pids():
            time.sleep(0.1)
        _ip("link", "del", host.link, check=False)
        _ip("netns", "del", host.name, check=False)

    def close(self) -> None:
        """Every host removed, then the bridge."""
        for role in list(self.hosts):
            self.remove(role)
        _ip("link", "del", self.bridge, check=False)


def serve_store(host: str, port: int) -> None:
    """The Mongo wire server the tests use (:class:`~tests.support.services.MongoWireServer`),
    in the foreground on ``host:port``: run with ``python -m tests.support.netns HOST PORT``
    under a host's prefix, so the store lives on that host."""
    import asyncio

    from mongoeco.api import AsyncMongoClient
    from mongoeco.wire import AsyncMongoEcoProxyServer

    async def serve() -> None:
        async with AsyncMongoClient() as client:
            server = AsyncMongoEcoProxyServer(client=client, host=host, port=port)
            await server.start()
            print(f"store listening on {host}:{port}", flush=True)
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    import sys

    serve_store(sys.argv[1], int(sys.argv[2]))
