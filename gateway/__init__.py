"""The gateway: Flask app factory with REST v1, OpenAPI docs, probes and the live feed."""

from gateway.app import create_app, socketio_of, start, stop

__all__ = ["create_app", "socketio_of", "start", "stop"]
