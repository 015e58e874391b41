"""The OpenAI-compatible inference gateway: routing, shadows, fallback, budgets, request logs.

Standalone::

    app = create_gateway_app(steward)           # FastAPI; lifespan starts/stops the state
    serve(app, host, port)                      # uvicorn, graceful SIGTERM

Mounted into another app (the server)::

    state = GatewayState(steward)               # await state.start() / state.stop() in its lifespan
    app.include_router(gateway_router(state))
"""

from modelsteward.gateway.app import GatewayFastPath, create_gateway_app, gateway_router, validate_chat_body
from modelsteward.gateway.core import GatewayOptions, GatewayState, Served
from modelsteward.gateway.errors import GatewayError, error_body, error_response
from modelsteward.gateway.keys import CreatedKey, create_key, hash_key, list_keys, revoke_key
from modelsteward.gateway.serve import serve

__all__ = [
    "create_gateway_app",
    "gateway_router",
    "GatewayFastPath",
    "GatewayState",
    "GatewayOptions",
    "Served",
    "GatewayError",
    "error_body",
    "error_response",
    "validate_chat_body",
    "serve",
    "create_key",
    "list_keys",
    "revoke_key",
    "hash_key",
    "CreatedKey",
]
