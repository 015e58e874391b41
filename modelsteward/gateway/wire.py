"""The gateway's answers on the wire: request ids and the hot path's JSON answer.

Both save a system call per request on the non-streaming path (issue 28 item 3: each is a point
where a loaded machine may switch away, and the client's wake-up for a second segment is latency
added at one connection): ids are read from the OS's random source in batches, and under uvicorn's
httptools protocol the status line, headers and body leave in one write.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["RequestIds", "JSONAnswer"]

_ID_BATCH = 4096
_FORKS = [0]  # bumped in a forked child: its parent's unread ids are not its own
os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


class RequestIds:
    """Request ids (``chatcmpl-`` + 24 hex digits, 12 bytes from the OS's random source), read
    ``_ID_BATCH`` at a time: one ``getrandom`` system call per batch instead of one per request.
    One per gateway (its event loop's thread)."""

    def __init__(self) -> None:
        self._hex, self._at, self._fork = "", 0, _FORKS[0]

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._hex) or self._fork != _FORKS[0]:
            self._hex, at, self._fork = os.urandom(12 * _ID_BATCH).hex(), 0, _FORKS[0]
        self._at = at + 24
        return "chatcmpl-" + self._hex[at:at + 24]


_UVICORN_HTTPTOOLS = "uvicorn.protocols.http.httptools_impl"


class _Gather:
    """Stands in for a uvicorn connection's transport while one answer is sent: the status line,
    headers and body are written together (one system call and one TCP segment instead of two; the
    client wakes once).  Everything else goes to the real transport."""

    __slots__ = ("real", "parts", "closing")

    def __init__(self, real: Any) -> None:
        self.real, self.parts, self.closing = real, [], False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class JSONAnswer(Response):
    """A 200 JSON answer sent with two raw ASGI messages (the hot path; skips header building).

    Under uvicorn's httptools protocol (``steward serve``, ``python -m modelsteward.gateway``) the two
    messages leave in one write (``_Gather``); under any other ASGI server they are sent as they are."""

    def __init__(self, body: bytes, rid: str, route_headers: list[tuple[bytes, bytes]]) -> None:  # noqa: D107
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()), *route_headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        body = {"type": "http.response.body", "body": self.body}
        cycle = getattr(send, "__self__", None)
        real = getattr(cycle, "transport", None)
        if real is None or type(cycle).__module__ != _UVICORN_HTTPTOOLS:
            await send(start)  # type: ignore[arg-type]
            await send(body)  # type: ignore[arg-type]
            return
        gather = cycle.transport = _Gather(real)  # type: ignore[union-attr]
        try:
            await send(start)  # type: ignore[arg-type]
            await send(body)  # type: ignore[arg-type]
        finally:
            cycle.transport = real  # type: ignore[union-attr]
            if gather.parts and not real.is_closing():  # a client gone meanwhile gets nothing
                real.write(b"".join(gather.parts))
            if gather.closing:
                real.close()
