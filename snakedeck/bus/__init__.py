"""Message bus: :func:`open_bus` picks RabbitMQ when ``SNAKEDECK_AMQP_URL`` is set, else the
in-process bus (standalone mode). pika is imported only when the AMQP bus is actually used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from snakedeck.bus.base import Bus, BusError, Delivery, Handler, Outgoing, Subscription, Topology

if TYPE_CHECKING:
    from snakedeck.settings import Settings

__all__ = [
    "Bus",
    "BusError",
    "Delivery",
    "Handler",
    "Outgoing",
    "Subscription",
    "Topology",
    "open_bus",
]


def open_bus(settings: Settings) -> Bus:
    """The bus these settings describe (not yet connected: AMQP connects on first use)."""
    if settings.amqp_url:
        from snakedeck.bus.amqp import AmqpBus

        return AmqpBus(settings.amqp_url, settings.namespace, queue_type=settings.queue_type)
    from snakedeck.bus.local import LocalBus

    return LocalBus(settings.namespace)
