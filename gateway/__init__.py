"""The gateway: Flask app factory with REST v1, OpenAPI docs, probes and the live feed."""

from gateway.app import create_app, shutdown, socketio_of

__all__ = ["create_app", "shutdown", "socketio_of"]
