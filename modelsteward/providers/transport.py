"""One interface for the provider's plain (non-streaming) POSTs, with two implementations.

``fasthttp``  the minimal pooled HTTP/1.1 client on httptools (``providers/fasthttp.py``), the default:
              kept because ``bench/gateway.py`` measures it at least 1.3x the library path (README,
              "HTTP transport");
``aiohttp``   the library path: the loop's pooled ``aiohttp.ClientSession`` (the one streams use).

``STEWARD_HTTP_TRANSPORT=aiohttp`` selects the library path (read when a provider is built).  Both
pass the same conformance test (``tests/test_http_transport.py``: Content-Length and chunked
bodies, keep-alive reuse, an idle connection closed by the server, TLS, large lines, timeouts).
Network failures raise :class:`TransportError` (``timeout`` set for timeouts); HTTP statuses are
returned, never raised.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import weakref
from typing import Protocol

__all__ = ["Transport", "TransportError", "FastHTTPTransport", "AiohttpTransport", "get_transport",
           "TRANSPORT_ENV", "TRANSPORTS"]

TRANSPORT_ENV = "STEWARD_HTTP_TRANSPORT"
TRANSPORTS = ("fasthttp", "aiohttp")


class TransportError(Exception):
    """The connection failed or timed out (no HTTP status)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class Transport(Protocol):
    name: str

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = 60.0,
                   connect_timeout: float = 5.0) -> tuple[int, bytes]:
        """POST ``body``; (status, whole response body).  Raises ``TransportError`` on network failures."""
        ...


class FastHTTPTransport:
    """``providers/fasthttp.py``: the running loop's pool (or, with ``ssl_context``, a pool of its own)."""

    name = "fasthttp"

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object] = weakref.WeakKeyDictionary()

    def _pool(self):  # type: ignore[no-untyped-def]
        from modelsteward.providers import fasthttp

        if self.ssl_context is None:
            return fasthttp.pool()
        loop = asyncio.get_running_loop()
        p = self._pools.get(loop)
        if p is None:
            p = self._pools[loop] = fasthttp.FastHTTP(loop, ssl_context=self.ssl_context)
        return p

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = 60.0,
                   connect_timeout: float = 5.0) -> tuple[int, bytes]:
        from modelsteward.providers import fasthttp

        try:
            result: tuple[int, bytes] = await self._pool().post(url, body, headers, timeout=timeout,
                                                                connect_timeout=connect_timeout)
            return result
        except fasthttp.HTTPFailure as exc:
            raise TransportError(str(exc), timeout=exc.timeout) from exc

    async def aclose(self) -> None:
        for p in list(self._pools.values()):
            p.close()  # type: ignore[attr-defined]
        self._pools.clear()


class AiohttpTransport:
    """The library path: ``aiohttp`` (the loop's pooled session, or one of its own with ``ssl_context``)."""

    name = "aiohttp"

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.ssl_context = ssl_context
        self._own: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = \
            weakref.WeakKeyDictionary()
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    def _session(self):  # type: ignore[no-untyped-def]
        if self.ssl_context is None:
            from modelsteward.providers.sessions import client_session

            return client_session()
        loop = asyncio.get_running_loop()
        sess = self._own.get(loop)
        if sess is None or sess.closed:
            sess = self._own[loop] = self._aiohttp.ClientSession(
                connector=self._aiohttp.TCPConnector(limit=0, ssl=self.ssl_context))
        return sess

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = 60.0,
                   connect_timeout: float = 5.0) -> tuple[int, bytes]:
        aiohttp = self._aiohttp
        tmo = self._timeouts.get((timeout, connect_timeout))
        if tmo is None:
            tmo = self._timeouts[(timeout, connect_timeout)] = aiohttp.ClientTimeout(total=timeout,
                                                                                    sock_connect=connect_timeout)
        try:
            async with self._session().post(url, data=body, headers=headers, timeout=tmo) as resp:
                return resp.status, await resp.read()
        except asyncio.TimeoutError as exc:
            raise TransportError(f"no response within {timeout:g}s", timeout=True) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        for sess in list(self._own.values()):
            await sess.close()
        self._own.clear()


_DEFAULT: dict[str, Transport] = {}


def get_transport(name: str | None = None) -> Transport:
    """The shared transport named by ``name``, else ``STEWARD_HTTP_TRANSPORT``, else ``fasthttp``."""
    key = (name or os.environ.get(TRANSPORT_ENV) or "fasthttp").strip().lower()
    t = _DEFAULT.get(key)
    if t is None:
        if key not in TRANSPORTS:
            from modelsteward.errors import ConfigError

            raise ConfigError(f"{TRANSPORT_ENV}={key!r} is not a transport; use one of {', '.join(TRANSPORTS)}.")
        t = _DEFAULT[key] = FastHTTPTransport() if key == "fasthttp" else AiohttpTransport()
    return t
