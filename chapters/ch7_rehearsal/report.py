"""The readiness report, three ways: terminal text, JSON (the dict itself), HTML with plots."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from reference.traffic.plan import format_scale

__all__ = ["render_text", "write_html"]


def validity_word(valid: object) -> str:
    """A check's verdict as the other reports word it: valid, INVALID, unknown."""
    if valid is True:
        return "valid"
    return "INVALID" if valid is False else "unknown"


def _ms(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def render_text(r: dict[str, Any]) -> str:
    """The report as a person reads it in a terminal."""
    out = [
        f"rehearsal: {r['verdict'].upper()}"
        + (f" ({'; '.join(r['reasons'])})" if r["reasons"] else ""),
        f"forecast peak  {r['forecast_tps']:.0f}/s simulated = {r['forecast_real_tps']:,}/s real"
        f" (scale {format_scale(r['scale'])})",
        f"capacity       {r['capacity_tps']:.0f}/s measured = {r['capacity_real_tps']:,}/s real;"
        f" headroom {r['headroom']:.2f}x (ready at 1.1x)",
    ]
    if r.get("plan", {}).get("system") == "pipeline":
        out.append(
            "system         the capstone's payment pipeline (cells, Paxos ledger, "
            "MQ, chapter 6's door)"
        )
    usl = r["usl"]
    if "error" in usl:
        out.append(f"USL fit        could not fit: {usl['error']}")
    elif not usl.get("describes_curve", True):
        out.append(
            f"USL fit        sigma {usl['sigma']:.4f}  kappa {usl['kappa']:.6f}"
            f" (fit error {100 * usl['rmse_rel']:.1f}%: the law does not describe this curve;"
            " no peak predicted, capacity is the measured one)"
        )
    else:
        out.append(
            f"USL fit        sigma {usl['sigma']:.4f}  kappa {usl['kappa']:.6f}  "
            f"peak {usl['peak_tps']:.0f}/s at N={usl['peak_concurrency']:.1f}"
            f" (fit error {100 * usl['rmse_rel']:.1f}%)"
        )
    out.append("capacity curve " + "  ".join(f"N={p['n']}:{p['tps']:.0f}" for p in r["sweep"]))
    out.append("")
    out.append("level  offered/s goodput/s served  SLO  isolation  end-to-end p50/p99/p999 ms")
    for lv in r["levels"]:
        e2e = lv["links"].get("end-to-end", {})
        out.append(
            f"{lv['factor']:>4.1f}x {lv['offered_tps']:>9.0f} {lv['goodput_tps']:>9.0f} "
            f"{100 * lv['success']:>5.1f}%  {'yes' if lv['slo_met'] else 'NO ':<3}  "
            f"{validity_word(lv['checks'].get('isolation')):<9}  "
            f"{_ms(e2e.get('p50'))}/{_ms(e2e.get('p99'))}/{_ms(e2e.get('p999'))}"
        )
    top = max(r["levels"], key=lambda lv: lv["factor"]) if r["levels"] else None
    if top is not None:
        out.append("")
        width = max([16, *(len(name) for name in top["links"])])
        title = f"links at {top['factor']}x"
        out.append(f"{title:<{width + 2}}     n   p50 ms   p99 ms  p999 ms")
        for name, pc in top["links"].items():
            out.append(
                f"  {name:<{width}} {pc['n']:>5} {_ms(pc['p50']):>8} {_ms(pc['p99']):>8}"
                f" {_ms(pc['p999']):>8}"
            )
    out.append("")
    out.append("bottlenecks (the first to saturate first; mean queue at the highest level)")
    width = max([8, *(len(b["node"]) for b in r["bottlenecks"])])
    pipeline = r.get("plan", {}).get("system") == "pipeline"
    for i, b in enumerate(r["bottlenecks"], 1):
        sat = (
            f"saturates at {b['saturates_at']}x"
            if b["saturates_at"] is not None
            else "not saturated at any level"
        )
        way_in = f"  inbound p99 {_ms(b['inbound_p99_ms'])} ms" if pipeline else ""
        out.append(f"  {i}. {b['node']:<{width}} queue {b['mean_queue']:>7.1f}{way_in}  {sat}")
    for d in r["drills"]:
        outcome = "passed" if d["passed"] else "FAILED"
        if "what" in d:  # the night's drills say it themselves
            what = d["what"]
        elif "stopped_after_ms" in d:
            what = (f"new tagged payments stopped {d['stopped_after_ms']:.1f} ms after the "
                    f"switch; {d['refused_after']} refused")  # fmt: skip
        else:
            back = d["recovered_after_ms"]
            checks = ", ".join(f"{k} {validity_word(v)}" for k, v in d["checks"].items())
            what = (f"goodput back to 90% of {d['goodput_before_tps']:.0f}/s "
                    + (f"{back:.0f} ms after the crash" if back is not None else "never")
                    + f"; {checks}")  # fmt: skip
        why = d.get("failed_because") or []
        if why and not d["passed"]:
            outcome += ": " + "; ".join(why)
        out.append(f"drill {d['name']}: {outcome} ({what})")
    out.append(f"isolation: {r['isolation']}")
    return "\n".join(out)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def write_html(r: dict[str, Any], path: Path) -> Path:
    """An HTML page: the text report and three plots (capacity, latency, queues)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reference.capacity.usl import usl_capacity

    images = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ns = [p["n"] for p in r["sweep"]]
    ax.plot(ns, [p["tps"] for p in r["sweep"]], "o", label="measured")
    usl = r["usl"]
    if "error" not in usl and ns:
        xs = [1 + i * (max(ns) - 1) / 100 for i in range(101)]
        ys = [usl["lambda_tps"] * usl_capacity(x, usl["sigma"], usl["kappa"]) for x in xs]
        ax.plot(
            xs,
            ys,
            "-",
            label=f"USL σ={usl['sigma']:.3f} κ={usl['kappa']:.5f}"
            + ("" if usl.get("describes_curve", True) else " (does not describe the curve)"),
        )
    ax.axhline(r["forecast_tps"], color="red", ls="--", label="forecast peak")
    ax.axhline(r["forecast_tps"] * 1.1, color="orange", ls=":", label="1.1x forecast")
    ax.set(xlabel="payments in flight (N)", ylabel="payments/s (simulated)", title="Capacity")
    ax.legend(fontsize=7)
    images.append(_png(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    factors = [lv["factor"] for lv in r["levels"]]
    for q in ("p50", "p99", "p999"):
        ax.plot(factors, [lv["links"].get("end-to-end", {}).get(q, math.nan) for lv in r["levels"]],
                "o-", label=f"end-to-end {q}")  # fmt: skip
    ax.set(xlabel="offered load (x forecast)", ylabel="ms", title="Latency by load level")
    ax.legend(fontsize=7)
    images.append(_png(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    # The eight longest queues (the pipeline has some forty nodes, most never queueing).
    longest = {n: max(lv["queues"].get(n, 0.0) for lv in r["levels"])
               for lv in r["levels"] for n in lv["queues"]}  # fmt: skip
    nodes = sorted(sorted(longest, key=lambda n: -longest[n])[:8])
    for node in nodes:
        ax.plot(factors, [lv["queues"].get(node, 0.0) for lv in r["levels"]], "o-", label=node)
    ax.set(xlabel="offered load (x forecast)", ylabel="mean queue (events)", title="Queues")
    ax.legend(fontsize=7)
    images.append(_png(fig))
    plt.close(fig)
    body = "".join(f'<img alt="plot" src="data:image/png;base64,{img}">' for img in images)
    page = (
        "<!doctype html><meta charset='utf-8'><title>Double 11 rehearsal</title>"
        f"<h1>Double 11 rehearsal: {html.escape(r['verdict'])}</h1>"
        f"<pre>{html.escape(render_text(r))}</pre>{body}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
