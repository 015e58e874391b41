"""The hot path's answer on the wire (issue 28 item 3): under uvicorn's httptools protocol the
status line, headers and body of a JSON answer leave in one write, and keep-alive, pipelined
requests and ``Connection: close`` behave as before; request ids are read from the OS in batches
and never repeat."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest

import modelsteward.gateway.wire as wire
from modelsteward.context import Steward
from modelsteward.fakes.upstream import InstantUpstream
from gateway_helpers import GatewayThread, register_upstream

BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _request(port: int, close: bool = False) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n").encode() + BODY


def _answers(data: bytes) -> list[tuple[bytes, dict[str, Any]]]:
    """(head, JSON body) of each HTTP answer in ``data`` (Content-Length framed)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        out.append((head, json.loads(rest[:length])))
        data = rest[length:]
    return out


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def gateway(steward: Steward) -> Any:
    with InstantUpstream() as up:
        steward.registry.add_use_case("chat", model=register_upstream(steward, "instant", up.url))
        with GatewayThread(steward) as gw:
            yield gw


def test_one_write_per_answer_with_keep_alive_pipelining_and_close(gateway: GatewayThread,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    real_init = wire._Gather.__init__

    def spy(self: Any, real: Any) -> None:
        real_init(self, real)
        writes.append(1)

    monkeypatch.setattr(wire._Gather, "__init__", spy)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        # two requests in one segment (pipelined) on a kept-alive connection, then one asking to close
        sock.sendall(_request(gateway.port) + _request(gateway.port))
        sock.sendall(_request(gateway.port, close=True))
        answers = _answers(_read_until_closed(sock))  # the server closes after the third answer
    assert len(answers) == 3, answers
    ids = [body["id"] for _, body in answers]
    for head, body in answers:
        assert head.startswith(b"HTTP/1.1 200 OK") and body["choices"][0]["message"]["content"], (head, body)
        assert f"x-request-id: {body['id']}".encode() in head
    assert b"connection: close" in answers[2][0].lower()
    assert len(set(ids)) == 3 and all(i.startswith("chatcmpl-") and len(i) == 33 for i in ids)
    assert len(writes) == 3, "each JSON answer should have been gathered into one write"


def test_request_ids_are_unique_across_batches_and_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "_ID_BATCH", 8)
    ids = wire.RequestIds()
    seen = [ids() for _ in range(50)]  # several batches
    assert len(set(seen)) == 50 and all(len(i) == len("chatcmpl-") + 24 for i in seen)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child must not hand out the parent's remaining ids
        os.close(r)
        os.write(w, ids().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child != ids() and child not in seen
