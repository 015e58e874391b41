"""A minimal pooled HTTP/1.1 client (asyncio protocol + httptools) for the gateway's hot path.

Only what a JSON POST to an OpenAI-compatible upstream needs: keep-alive connections pooled per
(scheme, host, port) and event loop, TLS for https, Content-Length or chunked responses, a total
timeout per request.  Measured on the gateway benchmark it costs a fraction of aiohttp's
per-request overhead (see bench/gateway.py); streaming responses still go through aiohttp.

A request that finds its reused keep-alive connection closed by the server before any response
byte is retried once on a fresh connection (the usual idle-close race); nothing else is retried
here (retries and fallback are the gateway's job).
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = ["FastHTTP", "pool", "HTTPFailure"]


class HTTPFailure(Exception):
    """The connection failed or timed out (no HTTP status)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class _Conn(asyncio.Protocol):
    def __init__(self, owner: _HostPool) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.fut: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.got_bytes = False
        self.closed = False
        self.reused = False

    # protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPFailure(f"bad HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HTTPFailure(f"connection closed by upstream{': ' + str(exc) if exc else ''}"))

    # parser callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        fut, self.fut = self.fut, None
        body, self.body = b"".join(self.body), []
        status = self.parser.get_status_code()
        keep = self.parser.should_keep_alive()
        self.parser = httptools.HttpResponseParser(self)
        self.got_bytes = False
        if keep and not self.closed:
            self.owner.release(self)
        else:
            self.close()
        if fut is not None and not fut.done():
            fut.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _HostPool:
    def __init__(self, loop: asyncio.AbstractEventLoop, scheme: str, host: str, port: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop, self.scheme, self.host, self.port = loop, scheme, host, port
        self.idle: deque[_Conn] = deque()
        self.ssl: ssl.SSLContext | None = (ssl_context or ssl.create_default_context()) if scheme == "https" else None
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    def release(self, conn: _Conn) -> None:
        if len(self.idle) < 1024:
            conn.reused = True
            self.idle.append(conn)
        else:
            conn.close()

    async def acquire(self, connect_timeout: float) -> _Conn:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Conn(self), self.host, self.port, ssl=self.ssl,
                                            server_hostname=self.host if self.ssl else None),
                connect_timeout,
            )
        except asyncio.TimeoutError as exc:
            raise HTTPFailure(f"connect to {self.host}:{self.port} timed out", timeout=True) from exc
        except OSError as exc:
            raise HTTPFailure(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn  # type: ignore[return-value]

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class FastHTTP:
    """Pools of keep-alive connections for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = loop
        self.ssl_context = ssl_context  # https: the system's default trust store unless given
        self.pools: dict[tuple[str, str, int], _HostPool] = {}

    def _pool(self, scheme: str, host: str, port: int) -> _HostPool:
        key = (scheme, host, port)
        p = self.pools.get(key)
        if p is None:
            p = self.pools[key] = _HostPool(self.loop, scheme, host, port, self.ssl_context)
        return p

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = 60.0,
                   connect_timeout: float = 5.0) -> tuple[int, bytes]:
        """POST ``body``; returns (status, response body).  Raises ``HTTPFailure`` on network errors."""
        parts = _split(url)
        pool = self._pool(parts[0], parts[1], parts[2])
        head = _head(parts[3], pool.host_header, headers, len(body))
        for attempt in (0, 1):
            conn = await pool.acquire(connect_timeout)
            fut: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
            conn.fut = fut
            assert conn.transport is not None
            conn.transport.write(head + body)
            timer = self.loop.call_later(timeout, _expire, conn, fut, timeout)
            try:
                return await fut
            except HTTPFailure as exc:
                if attempt == 0 and conn.reused and not conn.got_bytes and not exc.timeout:
                    continue  # the server closed an idle keep-alive connection: retry once on a new one
                raise
            except asyncio.CancelledError:
                conn.close()
                raise
            finally:
                timer.cancel()
        raise HTTPFailure("unreachable")  # pragma: no cover

    def close(self) -> None:
        for p in self.pools.values():
            p.close()
        self.pools.clear()


def _expire(conn: _Conn, fut: asyncio.Future[Any], timeout: float) -> None:
    if not fut.done():
        fut.set_exception(HTTPFailure(f"no response within {timeout:g}s", timeout=True))
        conn.fut = None
        conn.close()


_SPLIT_CACHE: dict[str, tuple[str, str, int, str]] = {}


def _split(url: str) -> tuple[str, str, int, str]:
    hit = _SPLIT_CACHE.get(url)
    if hit is None:
        u = urlsplit(url)
        scheme = u.scheme or "http"
        port = u.port or (443 if scheme == "https" else 80)
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        hit = _SPLIT_CACHE[url] = (scheme, u.hostname or "127.0.0.1", port, path)
    return hit


_HEAD_CACHE: dict[tuple[Any, ...], bytes] = {}


def _head(path: str, host: str, headers: dict[str, str], length: int) -> bytes:
    key = (path, host, tuple(headers.items()))
    pre = _HEAD_CACHE.get(key)
    if pre is None:
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")]
        pre = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        if len(_HEAD_CACHE) < 4096:
            _HEAD_CACHE[key] = pre
    return pre + str(length).encode() + b"\r\n\r\n"


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FastHTTP] = weakref.WeakKeyDictionary()


def pool() -> FastHTTP:
    """The running loop's client (created on first use)."""
    loop = asyncio.get_running_loop()
    p = _POOLS.get(loop)
    if p is None:
        p = _POOLS[loop] = FastHTTP(loop)
    return p


def close_pool() -> None:
    """Close the running loop's idle connections."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    p = _POOLS.pop(loop, None)
    if p is not None:
        p.close()
