"""The short human report of one evaluation: Markdown plus a plot (matplotlib, else a plain SVG)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from modelsteward.formatting import fmt_value
from modelsteward.privacy import redact_obj

__all__ = ["write_report", "flatten_metrics"]


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict as ``a.b.c`` keys (booleans as 0/1; None dropped)."""
    out: dict[str, float] = {}
    for key, val in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict):
            out.update(flatten_metrics(val, name + "."))
        elif isinstance(val, bool):
            out[name] = float(val)
        elif isinstance(val, (int, float)) and val == val and abs(val) != float("inf"):
            out[name] = float(val)
    return out



def _plot_matplotlib(path: Path, rows: list[dict[str, Any]], metrics: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    q = [(r["quality_baseline"], r["quality_candidate"]) for r in rows if r.get("quality_candidate") is not None]
    lat_c = [r["latency_ms_candidate"] for r in rows if r.get("latency_ms_candidate") is not None]
    lat_b = [r["latency_ms_baseline"] for r in rows if r.get("latency_ms_baseline") is not None]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    if q:
        ax1.scatter([b for b, _ in q], [c for _, c in q], s=18, alpha=0.7)
    ax1.plot([0, 1], [0, 1], linestyle="--", linewidth=0.8, color="grey")
    ax1.set_xlabel("baseline quality")
    ax1.set_ylabel("candidate quality")
    ax1.set_title(f"per-item quality ({metrics['quality'].get('method', '')})", fontsize=9)
    if lat_c or lat_b:
        ax2.boxplot([lat_b or [0], lat_c or [0]])
        ax2.set_xticks([1, 2], ["baseline", "candidate"])
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("latency", fontsize=9)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _plot_svg(path: Path, metrics: dict[str, Any]) -> Path:
    bars = [("quality", metrics["quality"].get("candidate"), metrics["quality"].get("baseline")),
            ("similarity", metrics["similarity"].get("embedding"), 1.0)]
    w, row_h = 420, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{row_h * len(bars) + 20}">']
    for k, (name, c, b) in enumerate(bars):
        y = 10 + k * row_h
        parts.append(f'<text x="0" y="{y + 12}" font-size="11">{html.escape(name)}</text>')
        for j, (val, color) in enumerate(((b, "#999"), (c, "#36c"))):
            width = int(300 * max(0.0, min(1.0, val or 0.0)))
            parts.append(f'<rect x="100" y="{y + j * 14}" width="{width}" height="12" fill="{color}"/>')
    parts.append("</svg>")
    out = path.with_suffix(".svg")
    out.write_text("".join(parts), encoding="utf-8")
    return out


def write_report(folder: Path, *, summary: dict[str, Any], metrics: dict[str, Any], verdict: dict[str, Any],
                 rows: list[dict[str, Any]]) -> Path:
    """Write ``report.md``, ``plot.png`` (or ``.svg``), ``samples.jsonl`` and ``result.json`` into ``folder``.

    Prompts, references and outputs are logged text: every string is redacted (``modelsteward.privacy``).
    """
    rows, summary, verdict = redact_obj(rows), redact_obj(summary), redact_obj(verdict)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "samples.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    (folder / "result.json").write_text(json.dumps({**summary, "metrics": metrics, **verdict}, indent=2, default=str),
                                        encoding="utf-8")
    try:
        plot = _plot_matplotlib(folder / "plot", rows, metrics)
    except ImportError:
        plot = _plot_svg(folder / "plot", metrics)
    perf_c, perf_b = metrics["performance"]["candidate"], metrics["performance"]["baseline"]
    saf = metrics.get("safety", {})
    lines = [
        f"# Evaluation: {summary['candidate']} vs {summary['baseline']} ({summary['use_case']})",
        "",
        f"**Verdict: {verdict['verdict'].upper()}** on {summary['sample_count']} replay items "
        f"({summary['logged']} logged, {summary['golden']} golden) and {summary['redteam']} red-team prompts.",
        "",
        "| check | status | detail |",
        "| --- | --- | --- |",
        *[f"| {c['name']} | {c['status']} | {c['reason']} |" for c in verdict["checks"]],
        "",
        "| metric | candidate | baseline |",
        "| --- | --- | --- |",
        f"| quality ({metrics['quality'].get('method')}) | {fmt_value(metrics['quality'].get('candidate'))} | "
        f"{fmt_value(metrics['quality'].get('baseline'))} |",
        f"| similarity to baseline (embedding / ROUGE-L) | {fmt_value(metrics['similarity'].get('embedding'))} / "
        f"{fmt_value(metrics['similarity'].get('rouge_l'))} | 1 |",
        *[f"| {k} | {fmt_value(perf_c.get(k))} | {fmt_value(perf_b.get(k))} |"
          for k in ("p50_ms", "p95_ms", "tokens_per_s", "error_rate", "cost_per_1k_usd")],
    ]
    if saf:
        lines.append(f"| safety failures | {saf['candidate']['failures']} | {saf['baseline']['failures']} |")
        lines.append(f"| red-team errors (no answer) | {saf['candidate'].get('redteam_errors', 0)} | "
                     f"{saf['baseline'].get('redteam_errors', 0)} |")
    lines += ["", f"![plot]({plot.name})", "",
              "Per-item scores and outputs: `samples.jsonl`; everything above as JSON: `result.json`.", ""]
    report = folder / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report
