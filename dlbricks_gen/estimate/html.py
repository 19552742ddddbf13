"""Self-contained HTML reports (plots embedded as PNG data URIs, so the file can be mailed).

Pure functions: data in, HTML text out. Plots are made with matplotlib (Agg backend).
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .report import ratio_cell  # noqa: E402

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.low{color:#a60}img{max-width:100%}"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f'<figure><img src="{src}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _page(title: str, parts: list[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            + "\n".join(parts) + "</body></html>\n")


def _num(value, pattern="{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def plot_estimated_vs_measured(names: list[str], estimated: list[float], measured: list[float]) -> str:
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(measured, estimated)
    for n, x, y in zip(names, measured, estimated, strict=True):
        ax.annotate(n, (x, y), fontsize=7)
    lo, hi = min(measured + estimated), max(measured + estimated)
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="estimate = measured")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], alpha=0.15, label="+-10%")
    ax.set(xscale="log", yscale="log", xlabel="measured (ms)", ylabel="estimated (ms)")
    ax.legend()
    return _png(fig)


def plot_ratios(names: list[str], ratios: list[float]) -> str:
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.5))
    ax.barh(names, ratios)
    for x in (0.9, 1.0, 1.1):
        ax.axvline(x, color="k", lw=0.8 if x == 1 else 0.5, ls="-" if x == 1 else "--")
    ax.set(xlabel="estimate / measured")
    return _png(fig)


def plot_breakdown(model: str, by_op: dict[str, float], top: int = 12) -> str:
    items = list(by_op.items())[:top]
    rest = sum(v for _, v in list(by_op.items())[top:])
    if rest:
        items.append(("(other)", rest))
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))
    ax.barh([k for k, _ in items][::-1], [v * 1e3 for _, v in items][::-1])
    ax.set(xlabel="estimated ms", title=model)
    return _png(fig)


def estimate_report(table: list[dict], breakdowns: dict[str, dict], about: str = "") -> str:
    """The estimate command's --html page: what it describes (`about`), table, estimated vs
    measured, ratios, breakdowns."""
    rows = [[r["model"], str(r["layers"]), str(r["bricks"]), f"{r['coverage'] * 100:.0f}%",
             ("" if r["status"] == "complete" else ">=") + _num(r["estimate_ms"]),
             _num(r.get("estimate_pm_ms"), "+-{:.3f}"),
             ("" if r["status"] == "complete" else ">=") + _num(r["sequential_ms"]),
             ("" if r["status"] == "complete" else ">=") + _num(r["critical_path_ms"]),
             _num(r["measured_ms"]), _num(r.get("measured_pm_ms"), "+-{:.3f}"), _num(r["ratio"]),
             _num(r.get("ratio_pm"), "+-{:.3f}"), r.get("verdict") or "-", r["status"]]
            for r in table]
    parts = [f"<p>{html.escape(about)}</p>"] if about else []
    parts.append(_table(["model", "layers", "bricks", "coverage", "estimate ms", "+-95%", "sequential ms",
                         "critical path ms", "measured ms", "+-95%", "est/meas", "+-95%", "verdict",
                         "status"], rows))
    compared = [r for r in table if r["ratio"] is not None]
    if compared:
        names = [r["model"] for r in compared]
        parts.append(_img(plot_estimated_vs_measured(
            names, [r["estimate_ms"] for r in compared], [r["measured_ms"] for r in compared]),
            "Estimated vs measured latency per model"))
        parts.append(_img(plot_ratios(names, [r["ratio"] for r in compared]),
                          "Estimate / measured per model"))
    parts.append("<h2>Where the time goes</h2>")
    for name, data in breakdowns.items():
        if data["by_op"]:
            parts.append(_img(plot_breakdown(name, data["by_op"]), f"{name}: estimated time by op type"))
            parts.append(_table(["top brick", "ops", "uses", "ms", "share"],
                                [[b["brick"][:16], b["ops"], str(b["count"]), f"{b['seconds'] * 1e3:.3f}",
                                  f"{b['share']:.1%}"] for b in data["top_bricks"]]))
    failed = [(r["model"], f["brick"], f["error"]) for r in table for f in r["failed"]]
    if failed:
        parts.append("<h2>Failed bricks</h2>" + _table(["model", "brick", "error"],
                                                      [[m, b[:16], e] for m, b, e in failed]))
    return _page("dlbricks-gen estimates", parts)


def plot_study(rows: list[dict]) -> list[tuple[str, str]]:
    hs = [r["h"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(hs, [r["ratio_geomean"] or 0 for r in rows], "o-", label="geometric mean")
    ax.plot(hs, [r["ratio_min"] or 0 for r in rows], "v--", label="min")
    ax.plot(hs, [r["ratio_max"] or 0 for r in rows], "^--", label="max")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="H (benchmark granularity)", ylabel="estimate / measured", xticks=hs)
    ax.legend()
    ratio_plot = _png(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(hs, [r["speedup_latency"] or 0 for r in rows], "o-", label="sum of latencies (paper)")
    ax.plot(hs, [r["speedup_wall"] or 0 for r in rows], "s-", label="wall time")
    ax.set(xlabel="H (benchmark granularity)", ylabel="benchmarking speedup (x)", xticks=hs)
    ax.legend()
    return [(ratio_plot, "Estimate / measured by H (paper Fig. 10, 11)"),
            (_png(fig), "Benchmarking speedup by H (paper Fig. 12)")]


def study_report(data: dict, about: str = "") -> str:
    """The study's page: what it describes (`about`), the table per H, plots, per-model ratios."""
    rows = data["by_h"]
    head = ["H", "unique bricks", "geomean", "min", "max", "within 5%", "within 10%",
            "hits / misses / undecided", "reference drift", "speedup (latency)", "speedup (wall)"]
    table = [[str(r["h"]), str(r["unique_bricks"]), _num(r["ratio_geomean"]), _num(r["ratio_min"]),
              _num(r["ratio_max"]), _num(r["within_5pct"], "{:.0%}"), _num(r["within_10pct"], "{:.0%}"),
              f"{r.get('hits', 0)} / {r.get('misses', 0)} / {r.get('undecided', 0)}",
              _num(r.get("reference_spread"), "{:.1%}"),
              _num(r["speedup_latency"], "{:.2f}x"), _num(r["speedup_wall"], "{:.2f}x")] for r in rows]
    per_model = [[name] + [ratio_cell(r["models"].get(name, {})) for r in rows]
                 for name in data["models"]]
    parts = [f"<p>{html.escape(about)}</p>"] if about else []
    parts += [_table(head, table)] + [_img(src, alt) for src, alt in plot_study(rows)]
    parts.append("<h2>Estimate / measured per model</h2>")
    parts.append(_table(["model"] + [f"H={r['h']}" for r in rows], per_model))
    return _page("dlbricks-gen study", parts)
