"""Starting snakedeck's server processes: ``gateway``, ``runner``, ``consumer`` and
``standalone`` (all three in one process)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Protocol

from snakedeck.settings import Settings, SettingsError

log = logging.getLogger("snakedeck")


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def require_broker(settings: Settings, role: str) -> None:
    if not settings.amqp_url:
        raise SettingsError(
            f"`snakedeck {role}` talks to RabbitMQ: set SNAKEDECK_AMQP_URL "
            "(or use `snakedeck standalone` to run everything in one process)"
        )


def background_services(settings: Settings, *, runner: bool, consumer: bool) -> list[Service]:
    """Build (not start) the runner and/or consumer on the configured bus and store."""
    from snakedeck.bus import open_bus

    services: list[Service] = []
    if consumer:
        from snakedeck.consumer import Consumer
        from snakedeck.store import open_store

        services.append(Consumer(settings, open_store(settings), open_bus(settings)))
    if runner:
        from runner.service import Runner

        services.append(Runner(settings, open_bus(settings)))
    return services


def run_until_signalled(services: list[Service]) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for service in services:
        service.start()
    log.info("started %s; Ctrl-C to stop", ", ".join(type(s).__name__ for s in services))
    stop.wait()
    for service in reversed(services):
        service.stop()
    return 0


def announce(settings: Settings, role: str) -> None:
    base = f"http://{settings.host}:{settings.port}"
    bus = "RabbitMQ" if settings.amqp_url else "in-process bus"
    store = f"MongoDB {settings.mongo_db}" if settings.mongo_uri else str(settings.sqlite_path)
    print(
        f"snakedeck {role}: {bus}, store {store}\n"
        f"  dashboard  {base}/dashboard/\n"
        f"  REST API   {base}/api/v1  (docs {base}/apidocs)\n"
        f"  submit     snakedeck submit demo --follow --url {base}",
        file=sys.stderr,
        flush=True,
    )


def main(role: str, settings: Settings) -> int:
    configure_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if role == "runner":
        require_broker(settings, role)
        return run_until_signalled(background_services(settings, runner=True, consumer=False))
    if role == "consumer":
        require_broker(settings, role)
        return run_until_signalled(background_services(settings, runner=False, consumer=True))
    from gateway.server import serve

    if role == "gateway":
        require_broker(settings, role)
    elif role != "standalone":
        raise SettingsError(f"unknown process role {role!r}")
    announce(settings, role)
    return serve(settings, standalone=role == "standalone")
