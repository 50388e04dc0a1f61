"""The gateway reads its Socket.IO packets within limits; a Socket.IO client in the same
process (a test's, the CLI's) must still read big events whole."""

from __future__ import annotations

import json

from socketio.packet import Packet

from snakedeck.bus.local import LocalBus
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore


def test_a_gateway_in_the_process_leaves_clients_their_plain_json(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    from cli.processes import build_gateway

    app = build_gateway(settings, store, bus)
    event = {"type": "log", "text": "x" * 10_000, "items": list(range(200))}
    encoded = "2" + json.dumps(["event", event])

    assert Packet(encoded_packet=encoded).data == ["event", event]  # what a client decodes

    server_packet = app.extensions["socketio"].server.packet_class
    assert server_packet is not Packet
    assert server_packet(encoded_packet=encoded).data[0] == "__malformed__"  # the server's bound
