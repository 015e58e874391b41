"""Conformance of the provider transports (``providers/transport.py``): the hand-written ``fasthttp``
client and the ``aiohttp`` library path answer the same way, over plain TCP and TLS.

A raw asyncio HTTP/1.1 server (so each wire behaviour is exactly what the test says) serves:
Content-Length and chunked bodies, keep-alive reuse, a connection the server drops after an answer
(the idle-close race), a 3 MiB single line (plain and chunked), error statuses, a slow answer
(timeout) and a closed port (refused).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from modelsteward.providers.transport import AiohttpTransport, FastHTTPTransport, TransportError, get_transport

pytestmark = pytest.mark.slow  # starts (in-process) servers

LARGE = b"x" * (3 << 20) + b"\n"  # one 3 MiB line
PIECES = [b'{"object": "chat.completion", ', b'"choices": [{"message": ', b'{"content": "hi"}}]}']


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
           .not_valid_after(now + dt.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
           .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    pem = crt.public_bytes(serialization.Encoding.PEM)
    (d / "cert.pem").write_bytes(pem)
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem", pem


class Server:
    def __init__(self) -> None:
        self.conns = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                hdrs = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
                body = await reader.readexactly(int(hdrs.get("content-length", "0")))
                self.requests.append((path, hdrs, body))
                if await self.respond(path, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def respond(self, path: str, body: bytes, w: asyncio.StreamWriter) -> bool:
        def plain(status: str, payload: bytes) -> None:
            w.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                    .encode() + payload)

        async def chunked(pieces: list[bytes]) -> None:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for p in pieces:
                w.write(f"{len(p):x}\r\n".encode() + p + b"\r\n")
                await w.drain()
                await asyncio.sleep(0.01)  # separate segments
            w.write(b"0\r\n\r\n")

        if path == "/json":
            plain("200 OK", json.dumps({"echo": body.decode(), "n": len(body)}).encode())
        elif path == "/chunked":
            await chunked(PIECES)
        elif path == "/large":
            plain("200 OK", LARGE)
        elif path == "/large-chunked":
            await chunked([LARGE[i:i + (1 << 16)] for i in range(0, len(LARGE), 1 << 16)])
        elif path == "/error":
            plain("503 Service Unavailable", b'{"error": {"message": "overloaded"}}')
        elif path == "/drop":  # answers, then closes without saying so (an idle keep-alive close)
            plain("200 OK", b'{"dropped": true}')
            await w.drain()
            return True
        elif path == "/slow":
            await asyncio.sleep(3)
            plain("200 OK", b"{}")
        await w.drain()
        return False


async def _start(tls: bool, cert: tuple[Path, Path, bytes]) -> tuple[Server, asyncio.AbstractServer, str,
                                                                       ssl.SSLContext | None]:
    srv = Server()
    server_ctx = client_ctx = None
    if tls:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert[0], cert[1])
        client_ctx = ssl.create_default_context(cadata=cert[2].decode())
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    return srv, server, f"{'https' if tls else 'http'}://127.0.0.1:{port}", client_ctx


def _transport(name: str, ctx: ssl.SSLContext | None) -> Any:
    if ctx is None:
        return get_transport(name)
    return FastHTTPTransport(ssl_context=ctx) if name == "fasthttp" else AiohttpTransport(ssl_context=ctx)


async def _close(t: Any) -> None:
    from modelsteward.providers.http import close_sessions

    if t.ssl_context is not None:
        await t.aclose()
    await close_sessions()


HDRS = {"Content-Type": "application/json", "Authorization": "Bearer k"}
CASES = [("fasthttp", False), ("fasthttp", True), ("aiohttp", False), ("aiohttp", True)]


@pytest.mark.parametrize(("name", "tls"), CASES)
async def test_bodies_statuses_keep_alive_and_large_lines(name: str, tls: bool, cert: Any) -> None:
    srv, server, base, ctx = await _start(tls, cert)
    t = _transport(name, ctx)
    try:
        for i in range(5):  # Content-Length, on one kept-alive connection
            status, raw = await t.post(base + "/json", b'{"i": %d}' % i, HDRS)
            assert status == 200 and json.loads(raw) == {"echo": '{"i": %d}' % i, "n": len(b'{"i": %d}' % i)}
        assert srv.conns == 1
        path, hdrs, _ = srv.requests[0]
        assert path == "/json" and hdrs["authorization"] == "Bearer k" and hdrs["host"].startswith("127.0.0.1:")
        status, raw = await t.post(base + "/chunked", b"{}", HDRS)
        assert status == 200 and raw == b"".join(PIECES)
        status, raw = await t.post(base + "/error", b"{}", HDRS)  # a status is returned, not raised
        assert status == 503 and b"overloaded" in raw
        for path in ("/large", "/large-chunked"):
            status, raw = await t.post(base + path, b"{}", HDRS, timeout=30)
            assert status == 200 and raw == LARGE
        assert srv.conns == 1  # still the one connection
        status, raw = await t.post(base + "/drop", b"{}", HDRS)
        assert status == 200 and raw == b'{"dropped": true}'
        await asyncio.sleep(0.1)  # the server has closed that connection by now
        status, raw = await t.post(base + "/json", b"{}", HDRS)
        assert status == 200 and srv.conns == 2
    finally:
        await _close(t)
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("name", "tls"), CASES)
async def test_timeout_and_refused_connection(name: str, tls: bool, cert: Any) -> None:
    srv, server, base, ctx = await _start(tls, cert)
    t = _transport(name, ctx)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    try:
        with pytest.raises(TransportError) as slow:
            await t.post(base + "/slow", b"{}", HDRS, timeout=0.3)
        assert slow.value.timeout is True
        with pytest.raises(TransportError) as refused:
            await t.post(f"{base.split('://')[0]}://127.0.0.1:{closed_port}/json", b"{}", HDRS, connect_timeout=2)
        assert refused.value.timeout is False
        status, _ = await t.post(base + "/json", b"{}", HDRS)  # the transport still works afterwards
        assert status == 200
    finally:
        await _close(t)
        server.close()
        await server.wait_closed()


def test_unknown_transport_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelsteward.errors import ConfigError

    monkeypatch.setenv("STEWARD_HTTP_TRANSPORT", "curl")
    with pytest.raises(ConfigError, match="STEWARD_HTTP_TRANSPORT"):
        get_transport()
    monkeypatch.setenv("STEWARD_HTTP_TRANSPORT", "aiohttp")
    assert get_transport().name == "aiohttp"
    monkeypatch.delenv("STEWARD_HTTP_TRANSPORT")
    assert get_transport().name == "fasthttp"
