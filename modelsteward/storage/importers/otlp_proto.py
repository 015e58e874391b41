"""OTLP protobuf files: binary ``ExportTraceServiceRequest`` / ``ExportLogsServiceRequest`` messages,
as the OpenTelemetry Collector's ``file`` exporter writes them with ``format: proto`` (each message
preceded by its size, 4 bytes big-endian), or one bare message (the body of an OTLP/HTTP request
saved to a file).  Each message is turned into its OTLP/JSON form (protobuf's JSON mapping: ids in
base64, which ``otel`` reads) and imported as ``otel``.

Decoding needs ``opentelemetry-proto``; without it such a file is refused naming the format.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelsteward.errors import InvalidInput

__all__ = ["is_binary", "iter_proto"]


def is_binary(path: Path) -> bool:
    """Not JSON: the first non-blank byte opens no JSON document (protobuf starts with a field tag)."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    return bool(head) and head[:1] not in (b"{", b"[")


def _frames(data: bytes) -> list[bytes]:
    """The size-prefixed messages of the file exporter, or the whole file as one message."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 4 > len(data):
            return [data]
        n = int.from_bytes(data[pos:pos + 4], "big")
        if n == 0 or pos + 4 + n > len(data):
            return [data]
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def iter_proto(path: Path, counter: list[int]) -> Iterator[tuple[str, Any]]:
    """(location, OTLP/JSON dict) of every message of a protobuf file."""
    try:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped,unused-ignore]
        from google.protobuf.message import DecodeError  # type: ignore[import-untyped,unused-ignore]
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        raise InvalidInput(f"{path}: an OTLP protobuf file (binary ExportTraceServiceRequest): reading it needs "
                           "opentelemetry-proto (pip install opentelemetry-proto), or export OTLP/JSON instead "
                           "(the Collector's file exporter with format: json). Nothing was imported.") from None
    data = path.read_bytes()
    frames = _frames(data)
    for i, raw in enumerate(frames, 1):
        loc = f"message {i}"
        try:
            traces = ExportTraceServiceRequest.FromString(raw)
            spans = [s for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans]
            if spans and all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans):
                msg: Any = traces
            else:  # a log record read as a span has no 16-byte trace id (the field numbers differ)
                msg = ExportLogsServiceRequest.FromString(raw)
        except DecodeError as exc:
            raise InvalidInput(f"{path}: {loc}: not an OTLP protobuf message ({exc}); the files read are OTLP/JSON "
                               "or OTLP protobuf (ExportTraceServiceRequest / ExportLogsServiceRequest). "
                               "Nothing was imported.") from None
        counter[0] = len(data) * i // len(frames)
        yield loc, MessageToDict(msg)
