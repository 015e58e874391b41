"""Import benchmark: 1M OpenTelemetry GenAI spans (OTLP/JSON, the Collector's file-exporter shape)
through ``steward logs import``'s importer, against the same rows in our own JSON-lines format
imported by the same code in the same run (the cost of reading OTLP on top of our own rows), and
the same spans as a tool conversation (issue 24: history with an assistant ``tool_call`` part and a
``tool_call_response`` part, answer a ``tool_call`` part, as opentelemetry-instrumentation-openai-v2
records them; the importer turns them into OpenAI tool calls / tool turns and checks them).

    .venv/bin/python bench/import_otel.py [--spans 1000000] [--per-line 512]

The generator writes both files (one ExportTraceServiceRequest of ``--per-line`` chat spans per
line, v1.37 attributes with gen_ai.input/output.messages as JSON strings; and one steward row per
line with the same values).  Each import runs in its own process on a fresh log store (the whole
two-pass import: validate + de-duplicate against the store + spool, then append + flush to
Parquet) and reports rows/s, rows per CPU-second (steadier on a shared machine: process time of all
its threads) and its peak memory (the importer streams: it never holds the file).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

USE_CASE = "bench"


def _s(k: str, v: str) -> dict:
    return {"key": k, "value": {"stringValue": v}}


def _i(k: str, v: int) -> dict:
    return {"key": k, "value": {"intValue": str(v)}}


def _tool_messages(i: int, q: str) -> tuple[list, list]:
    call = {"type": "tool_call", "id": f"call_{i}", "name": "get_order", "arguments": {"order": i % 10_000}}
    msgs_in = [{"role": "user", "parts": [{"type": "text", "content": q}]},
               {"role": "assistant", "parts": [call]},
               {"role": "tool", "parts": [{"type": "tool_call_response", "id": f"call_{i}",
                                           "response": f'{{"status":"shipped","days":{i % 5 + 1}}}'}]}]
    nxt = {"type": "tool_call", "id": f"call_{i}b", "name": "notify", "arguments": {"order": i % 10_000}}
    msgs_out = [{"role": "assistant", "parts": [nxt], "finish_reason": "tool_calls"}]
    return msgs_in, msgs_out


def generate(n: int, per_line: int, otel_path: Path, steward_path: Path, tools_path: Path | None = None) -> None:
    t0 = 1_764_633_600_000_000_000
    with open(otel_path, "wb") as fo, open(steward_path, "wb") as fs, open(tools_path or "/dev/null", "wb") as ft:
        i = 0
        line_no = 0
        while i < n:
            spans = []
            tspans = []
            rows = []
            trace = f"{line_no:032x}"
            for _ in range(min(per_line, n - i)):
                start = t0 + i * 10_000_000
                dur = 200_000_000 + (i % 997) * 1_000_000
                q = f"Question {i}: where is my order #{i % 10_000}?"
                a = f"Order {i % 10_000} shipped and arrives in {i % 5 + 1} days."
                model = "gpt-4o-mini" if i % 3 else "gpt-4o"
                inp, out = 20 + i % 50, 8 + i % 30
                msgs_in = [{"role": "user", "parts": [{"type": "text", "content": q}]}]
                msgs_out = [{"role": "assistant", "parts": [{"type": "text", "content": a}], "finish_reason": "stop"}]
                spans.append({
                    "traceId": trace, "spanId": f"{i:016x}", "name": f"chat {model}", "kind": 3,
                    "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
                    "attributes": [_s("gen_ai.operation.name", "chat"), _s("gen_ai.provider.name", "openai"),
                                   _s("gen_ai.request.model", model), _s("gen_ai.response.model", model + "-2024-07-18"),
                                   _s("gen_ai.response.id", f"chatcmpl-{i}"), _i("gen_ai.usage.input_tokens", inp),
                                   _i("gen_ai.usage.output_tokens", out), _s("server.address", "api.openai.com"),
                                   _s("gen_ai.input.messages", json.dumps(msgs_in)),
                                   _s("gen_ai.output.messages", json.dumps(msgs_out))],
                    "status": {},
                })
                if tools_path is not None:
                    t_in, t_out = _tool_messages(i, q)
                    tspan = dict(spans[-1])
                    tspan["attributes"] = spans[-1]["attributes"][:-2] + [
                        _s("gen_ai.input.messages", json.dumps(t_in)), _s("gen_ai.output.messages", json.dumps(t_out))]
                    tspans.append(tspan)
                rows.append({"ts": start // 1000, "request_id": f"otel:{i:016x}", "use_case": USE_CASE,
                             "model_id": f"openai:{model}", "role": "primary",
                             "messages": [{"role": "user", "content": q}], "response": a, "input_tokens": inp,
                             "output_tokens": out, "latency_ms": dur / 1e6, "status": "ok",
                             "metadata": {"source": "otel", "trace_id": trace, "span_id": f"{i:016x}"}})
                i += 1
            doc = {"resourceSpans": [{"resource": {"attributes": [_s("service.name", "support-bot")]},
                                      "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2",
                                                                "version": "2.1b0"}, "spans": spans}]}]}
            fo.write(orjson.dumps(doc) + b"\n")
            if tools_path is not None:
                doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = tspans
                ft.write(orjson.dumps(doc) + b"\n")
            fs.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
            line_no += 1


def child(path: str, fmt: str) -> None:
    from modelsteward.storage.importers import import_file
    from modelsteward.storage.logstore import LogStore

    root = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        store = LogStore(root, batch_rows=50_000, flush_seconds=1.0)
        t, c = time.perf_counter(), time.process_time()
        rep = import_file(store, Path(path), fmt=fmt, use_case=USE_CASE)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        n = store.query("SELECT count(*) AS n FROM logs")[0]["n"]
        store.close()
        print(json.dumps({"rows": rep.rows, "stored": n, "seconds": secs, "cpu": cpu,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(path: Path, fmt: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), fmt], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--per-line", type=int, default=512)
    ap.add_argument("--child", nargs=2, metavar=("PATH", "FORMAT"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-files-"))
    try:
        otel_path, steward_path, tools_path = tmp / "spans.otlp.jsonl", tmp / "rows.jsonl", tmp / "tools.otlp.jsonl"
        t = time.perf_counter()
        generate(args.spans, args.per_line, otel_path, steward_path, tools_path)
        print(f"generated {args.spans:,} spans in {time.perf_counter() - t:.1f} s: OTLP {otel_path.stat().st_size / 1e6:,.0f} MB,"
              f" steward rows {steward_path.stat().st_size / 1e6:,.0f} MB", flush=True)
        o = run(otel_path, "otel")
        s = run(steward_path, "steward")
        tl = run(tools_path, "otel")
        for name, r in (("otel", o), ("steward (baseline)", s), ("otel tool calls", tl)):
            assert r["rows"] == r["stored"] == args.spans, r
            print(f"import {name:18s} {r['rows']:,} rows in {r['seconds']:.1f} s = {r['rows'] / r['seconds']:,.0f} rows/s"
                  f" ({r['rows'] / r['cpu']:,.0f} rows per CPU-second), peak {r['peak_mb']:,.0f} MB", flush=True)
        ratio = (o["rows"] / o["seconds"]) / (s["rows"] / s["seconds"])
        cpu_ratio = (o["rows"] / o["cpu"]) / (s["rows"] / s["cpu"])
        print(f"otel / steward: {ratio:.2f}x rows/s, {cpu_ratio:.2f}x rows per CPU-second")
        t_ratio = (tl["rows"] / tl["seconds"]) / (o["rows"] / o["seconds"])
        t_cpu = (tl["rows"] / tl["cpu"]) / (o["rows"] / o["cpu"])
        print(f"otel tool calls / otel plain text: {t_ratio:.2f}x rows/s, {t_cpu:.2f}x rows per CPU-second")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _table import row

        row("import_otel", f"import {args.spans:,} OTel GenAI spans (rows per CPU-second)", round(o["rows"] / o["cpu"]),
            "rows/CPU-s", baseline=round(s["rows"] / s["cpu"]), baseline_what="same rows as steward JSON lines",
            note=f"peak {o['peak_mb']:,.0f} MB; with tool calls {tl['rows'] / tl['cpu']:,.0f} rows/CPU-s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
