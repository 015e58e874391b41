"""The running event loop's pooled ``aiohttp.ClientSession``, shared by the streams of the HTTP
provider (``providers/http.py``) and the ``aiohttp`` transport of plain completions
(``providers/transport.py``): its own module so that those two do not import each other (issue 27).
``providers.http`` re-exports ``client_session`` and ``close_sessions``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from modelsteward.providers import fasthttp

__all__ = ["client_session", "close_sessions"]


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()
_CLOSERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def client_session() -> aiohttp.ClientSession:
    """The pooled session of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    sess = _SESSIONS.get(loop)
    if sess is None or sess.closed:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=512, ttl_dns_cache=300, keepalive_timeout=30)
        sess = aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",))
        _SESSIONS[loop] = sess
        # Close it when the loop shuts down (asyncio.run finalises async generators before closing).
        closer = _close_at_shutdown(sess)
        _CLOSERS[loop] = closer
        loop.create_task(_start(closer))
    return sess


async def _start(gen: AsyncIterator[None]) -> None:
    await gen.__anext__()


async def _close_at_shutdown(sess: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if not sess.closed:
            await sess.close()


async def close_sessions() -> None:
    """Close the running loop's pooled connections (call from a shutdown hook)."""
    fasthttp.close_pool()
    loop = asyncio.get_running_loop()
    sess = _SESSIONS.pop(loop, None)
    if sess is not None and not sess.closed:
        await sess.close()
