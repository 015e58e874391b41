"""The HTTP front-end: management API (/api), the gateway (/v1), health, metrics and the web console."""

from modelsteward.server.app import create_app

__all__ = ["create_app"]
