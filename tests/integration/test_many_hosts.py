"""snakedeck on many hosts: each host a Linux network namespace, nothing shared but RabbitMQ
and the store.

The host ``infra`` holds a RabbitMQ node of its own, the store (the Mongo wire server) and the
consumer with its reaper; two runner hosts and two gateway hosts each run one production
process (``ip netns exec HOST python -m cli ROLE``) with a ``DATA_DIR`` of its own, reaching
``infra`` over a bridge. The test process, in the root namespace, is the user: it submits
through both gateways, follows every run live on both, and reads logs and results from both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from snakedeck.settings import Settings
from snakedeck.states import TERMINAL_RUN_STATES
from tests.support import netns, rabbit_node
from tests.support.deployment import Deployment
from tests.support.live_clients import SocketIOFeed, WebSocketFeed
from tests.support.network_lock import changing_network
from tests.support.services import unavailable
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
STORE_PORT = 27017
DEMO_JOBS = {"make_sample": "done", "count": "done", "summarize": "done", "all": "done"}


class Infra:
    """The ``infra`` host: broker and store, both reachable only at the host's address."""

    def __init__(self, network: netns.Network, tmp: Path) -> None:
        import subprocess
        import sys

        self.host = network.add("infra")
        self.store_log = open(tmp / "store.log", "ab")  # noqa: SIM115 (closed in close())
        serve = [sys.executable, "-m", "tests.support.netns", self.host.address, str(STORE_PORT)]
        self.store = subprocess.Popen(
            [*self.host.prefix, *serve],
            cwd=REPO,
            stdout=self.store_log,
            stderr=subprocess.STDOUT,
        )
        self.broker = rabbit_node.RabbitNode(
            tmp, listen=self.host.address, prefix=self.host.prefix
        ).start()

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{self.host.address}:{STORE_PORT}/?directConnection=true"

    def queue(self, name: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages of a queue, as the broker counts them."""
        out = self.broker._ctl("list_queues", "name", "messages_ready", "messages_unacknowledged")
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == name:
                return int(parts[1]), int(parts[2])
        return 0, 0

    def close(self) -> None:
        self.broker.purge()
        self.store.kill()
        self.store.wait(10)
        self.store_log.close()


@pytest.fixture(scope="module")
def network() -> Iterator[netns.Network]:
    with changing_network():  # no browser test meanwhile: Chromium aborts loads on a change
        try:
            netns.check_available()
        except netns.NetnsUnavailable as exc:
            unavailable(f"network namespaces ({exc})")
        if not rabbit_node.available():
            unavailable("a private RabbitMQ node (rabbitmq-server binaries, root)")
        net = netns.Network()
        try:
            yield net
        finally:
            net.close()


@pytest.fixture(scope="module")
def infra(network: netns.Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    made = Infra(network, tmp_path_factory.mktemp("infra"))
    try:
        wait_for(_store_answers(made.mongo_uri), 60, "the store on the infra host")
        yield made
    finally:
        made.close()


def _store_answers(uri: str) -> Any:
    def answers() -> bool:
        import pymongo

        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)
        try:
            client.admin.command("ping")
            return True
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()

    return answers


class Cluster:
    """One test's hosts on the network: consumer on infra, two runners, two gateways."""

    def __init__(self, network: netns.Network, infra: Infra, tmp: Path) -> None:
        self.network = network
        self.tag = uuid.uuid4().hex[:6]
        base = Settings(
            amqp_url=infra.broker.url,
            mongo_uri=infra.mongo_uri,
            mongo_db=f"sdhosts_{self.tag}",
            namespace=f"sdhosts-{self.tag}",
            workflows_dir=REPO / "workflows",
            cores=2,
            max_runs=2,
            heartbeat_interval=1.0,
            claim_lease=10.0,
            orphan_grace=30.0,
            cancel_grace=5.0,
        )
        self.roles = [f"{role}{self.tag}" for role in ("r1", "r2", "g1", "g2")]
        self.runner_hosts = [network.add(r) for r in self.roles[:2]]
        self.gateway_hosts = [network.add(r) for r in self.roles[2:]]
        self.d = Deployment(tmp, base)
        self.d.consumer("consumer", prefix=infra.host.prefix)
        self.runners = [
            self.d.runner(f"runner-{i}", prefix=host.prefix)
            for i, host in enumerate(self.runner_hosts, 1)
        ]
        self.gateways = [
            self.d.gateway(
                f"gateway-{i}",
                prefix=host.prefix,
                host=host.address,
                allowed_hosts=(host.address,),
            )
            for i, host in enumerate(self.gateway_hosts, 1)
        ]
        self.d.wait_runners(2)

    @property
    def urls(self) -> list[str]:
        return [g.url for g in self.gateways]

    def hosts_with_work_dir(self, run_id: str) -> list[int]:
        """Which runner hosts (1, 2) have the run's work directory in their DATA_DIR."""
        return [
            i
            for i, runner in enumerate(self.runners, 1)
            if (runner.settings.data_dir / "runs" / run_id / "work").is_dir()
        ]

    def submit_four(self, config: dict[str, Any]) -> list[str]:
        return [self.d.submit(config, url=url) for url in self.urls for _ in range(2)]

    def close(self) -> None:
        for role in self.roles:  # every process of the hosts, Snakemake included
            self.network.remove(role)
        self.d.close()


@pytest.fixture
def cluster(network: netns.Network, infra: Infra, tmp_path: Path) -> Iterator[Cluster]:
    made: list[Cluster] = []
    try:
        made.append(Cluster(network, infra, tmp_path))
        yield made[0]
    finally:
        for c in made:
            c.close()


class Followers:
    """Live clients of every run on both gateways: Socket.IO on the first, a plain WebSocket
    per run on the second, each from the run's first event."""

    def __init__(self, urls: list[str], run_ids: list[str]) -> None:
        self.sio = SocketIOFeed(urls[0], reconnect=True).connect()
        for run_id in run_ids:
            self.sio.subscribe(run_id=run_id, after_seq=0)
        self.ws = {r: WebSocketFeed(urls[1], f"/ws/runs/{r}?after_seq=0") for r in run_ids}

    def feeds(self, run_id: str) -> list[Any]:
        return [self.sio, self.ws[run_id]]

    def close(self) -> None:
        self.sio.close()
        for ws in self.ws.values():
            ws.close()


def _events(c: Cluster, run_id: str) -> list[dict[str, Any]]:
    return c.d.store.list_events(run_id, after_seq=0, limit=1_000_000)


def _started(c: Cluster, run_id: str) -> int:
    return sum(e["type"] == "workflow_started" for e in _events(c, run_id))


def _dropped(log: str, run_id: str) -> bool:
    """The runner's log says it received the run's command and dropped it (the run ended,
    or, had the broker been quicker than the reaper, another runner held it)."""
    return any(f"run {run_id}:" in line and "command dropped" in line for line in log.splitlines())


def _get(url: str, path: str) -> requests.Response:
    resp = requests.get(url + "/api/v1" + path, timeout=30)
    assert resp.status_code == 200, (url, path, resp.status_code, resp.text[:500])
    return resp


def _check_served_alike(c: Cluster, run_id: str) -> None:
    """Log and results of a COMPLETE run, as both gateways serve them: identical, and the
    result byte for byte the file on the runner host that ran it."""

    def logs() -> list[dict[str, Any]] | None:
        got = [_get(url, f"/runs/{run_id}/log").json() for url in c.urls]
        return got if got[0] == got[1] and "summarize" in got[0]["text"] else None

    log = wait_for(logs, 120, f"both gateways to serve the whole log of {run_id}")[0]
    assert log["text"] and log["size"] == len(log["text"].encode())

    def listed() -> list[dict[str, Any]] | None:
        got = [_get(url, f"/runs/{run_id}/outputs").json() for url in c.urls]
        paths = {o["path"] for o in got[0]["outputs"]}
        return got if got[0] == got[1] and "summary.tsv" in paths else None

    wait_for(listed, 120, f"both gateways to list the results of {run_id}")
    (host,) = c.hosts_with_work_dir(run_id)
    on_disk = (
        c.runners[host - 1].settings.data_dir / "runs" / run_id / "work" / "summary.tsv"
    ).read_bytes()
    served = [_get(url, f"/runs/{run_id}/outputs/summary.tsv").content for url in c.urls]
    assert served == [on_disk, on_disk]


def test_four_runs_through_two_gateways_run_once_each_and_are_served_by_both(
    cluster: Cluster,
) -> None:
    c = cluster
    run_ids = c.submit_four({"samples": 6, "sleep": 0.3})
    followers = Followers(c.urls, run_ids)
    try:
        for run_id in run_ids:
            c.d.verify(
                "many hosts",
                run_id,
                expected_state="COMPLETE",
                expected_jobs=DEMO_JOBS,
                feeds=followers.feeds(run_id),
            )
            assert _started(c, run_id) == 1
            assert len(c.hosts_with_work_dir(run_id)) == 1
            _check_served_alike(c, run_id)
    finally:
        followers.close()


def test_a_runner_host_cut_off_mid_run_has_its_runs_declared_lost_never_run_twice(
    cluster: Cluster, infra: Infra
) -> None:
    c = cluster
    run_ids = c.submit_four({"samples": 20, "sleep": 1.0})
    followers = Followers(c.urls, run_ids)
    try:

        def running_on_first_host() -> list[str] | None:
            held = [
                r
                for r in run_ids
                if c.hosts_with_work_dir(r) == [1]
                and c.d.run(r).get("state") == "RUNNING"
                and (c.d.run(r).get("progress") or {}).get("done", 0) >= 3
            ]
            return held or None

        wait_for(running_on_first_host, 240, "the first runner host to be running a run")
        c.runner_hosts[0].cut_off()
        held = [r for r in run_ids if c.hosts_with_work_dir(r) == [1]]
        held = [r for r in held if c.d.run(r).get("state") not in TERMINAL_RUN_STATES]
        assert held

        for run_id in held:
            run = wait_for(
                lambda r=run_id: c.d.run(r) if c.d.run(r).get("state") == "SYSTEM_ERROR" else None,
                90,
                f"the reaper to declare {run_id} lost",
            )
            assert "was lost" in str(run.get("state_reason")), run.get("state_reason")
        for run_id in run_ids:
            lost = run_id in held
            c.d.verify(
                "runner host cut off" if lost else "beside a lost host",
                run_id,
                expected_state="SYSTEM_ERROR" if lost else "COMPLETE",
                expected_jobs={} if lost else DEMO_JOBS,
                feeds=followers.feeds(run_id),
            )

        # The broker gives the cut-off runner's unacknowledged submit commands to the other
        # runner once it notices the connection is dead; that runner must start nothing.
        runs_queue = f"{c.d.base.namespace}.runs"
        wait_for(lambda: infra.queue(runs_queue) == (0, 0), 180, "the runs queue to drain")
        for run_id in held:  # the second delivery did happen, and was dropped
            wait_for(
                lambda r=run_id: _dropped(c.runners[1].output(10**7), r),
                60,
                f"the other runner to receive {run_id}'s command again",
            )
        for run_id in held:
            assert c.d.run(run_id).get("state") == "SYSTEM_ERROR"
            assert _started(c, run_id) == 1, "a lost run was started again"
            assert c.hosts_with_work_dir(run_id) == [1], "a lost run was run on another host"
        for run_id in set(run_ids) - set(held):
            assert _started(c, run_id) == 1
            assert len(c.hosts_with_work_dir(run_id)) == 1
            _check_served_alike(c, run_id)
    finally:
        followers.close()
