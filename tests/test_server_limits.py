"""Request-size limits hold on every API route before the body is read (and before authentication):
a 96 MiB anonymous POST /api/models is refused with 413 JSON while the server's resident memory stays
flat.  The server runs as a real ``steward serve`` process; its memory is read from /proc."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway_helpers import free_port

STEWARD = [sys.executable, "-c", "from modelsteward.cli import main; main()"]
MIB = 1 << 20


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_big(port: int, path: str, size: int, *, chunked: bool) -> tuple[int, dict[str, Any], int]:
    """POST ``size`` bytes; stop sending as soon as the server answers.  Returns (status, body, bytes sent)."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sent = 0
    try:
        sock.sendall((head + "\r\n").encode())
        while sent < size:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered early
            part = _piece(sent, min(MIB, size - sent), size)
            try:
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        if chunked and sent >= size:
            sock.sendall(b"0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head_raw, _, body = data.partition(b"\r\n\r\n")
    status = int(head_raw.split(b" ", 2)[1])
    return status, orjson.loads(body[: _length(data)]), sent


_HEAD, _TAIL = b'{"provider": "openai", "model_id": "', b'"}'


def _piece(start: int, n: int, size: int) -> bytes:
    """Bytes ``start..start+n`` of one valid JSON object of ``size`` bytes (a very long model id)."""
    whole = bytearray(b"a" * n)
    for i in range(n):
        pos = start + i
        if pos < len(_HEAD):
            whole[i] = _HEAD[pos]
        elif pos >= size - len(_TAIL):
            whole[i] = _TAIL[pos - (size - len(_TAIL))]
        elif i > 64 and pos < size - len(_TAIL) - n:
            break
    return bytes(whole)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


@pytest.fixture
def server(settings: Any, tmp_path: Path):
    port = free_port()
    env = {**os.environ, "STEWARD_HOME": str(settings.home)}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([*STEWARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "steward serve did not come up"
            time.sleep(0.2)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_anonymous_post_is_refused_before_it_is_read(server, chunked: bool) -> None:
    port, proc = server
    # warm the route once (imports, first allocations) so growth measures the body only
    assert httpx.post(f"http://127.0.0.1:{port}/api/models", json={}).status_code == 401
    before = _rss(proc.pid)
    status, body, sent = _post_big(port, "/api/models", 96 * MIB, chunked=chunked)
    grown = _rss(proc.pid) - before
    print(f"chunked={chunked}: sent {sent / MIB:.1f} MiB, resident memory grew {grown / MIB:.1f} MiB")
    assert status == 413, body
    assert body["code"] == "request_too_large" and "STEWARD_MAX_REQUEST_BYTES" in body["message"]
    assert grown < 16 * MIB, f"resident memory grew {grown / MIB:.1f} MiB while refusing the body"
    assert sent < 64 * MIB  # refused early, not after the whole upload
    # a normal-sized request still reaches authentication
    assert httpx.post(f"http://127.0.0.1:{port}/api/models", json={}).status_code == 401
