"""deploy/rabbitmq/definitions.json must declare exactly the topology the code declares.

RabbitMQ refuses (PRECONDITION_FAILED) to re-declare a queue or exchange with other
arguments, so declaring the file's topology first and then the bus's is a real comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

import pika

from snakedeck.bus.amqp import AmqpBus

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def test_definitions_match_the_declared_topology(amqp_url: str, namespace: str) -> None:
    raw = DEFINITIONS.read_text().replace("snakedeck.", f"{namespace}.")
    definitions = json.loads(raw)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    bus = AmqpBus(amqp_url, namespace)
    try:
        ch = connection.channel()
        for ex in definitions["exchanges"]:
            ch.exchange_declare(ex["name"], ex["type"], durable=ex["durable"])
        for q in definitions["queues"]:
            ch.queue_declare(q["name"], durable=q["durable"], arguments=q["arguments"])
        for b in definitions["bindings"]:
            ch.queue_bind(b["destination"], b["source"], routing_key=b["routing_key"])
        bus.declare()  # raises if any name above was declared differently
        declared = {ex["name"] for ex in definitions["exchanges"]} | {
            q["name"] for q in definitions["queues"]
        }
        t = bus.topology
        assert declared == {
            t.events,
            t.updates,
            t.control,
            t.dlx,
            t.persist,
            t.notify,
            t.runs,
            t.dead,
        }
    finally:
        bus.delete_topology()
        bus.close()
        connection.close()
