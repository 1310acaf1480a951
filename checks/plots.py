"""Pictures of verdicts, written on request (matplotlib is imported lazily).

`d11 --help` must stay fast, so nothing here imports matplotlib at module
level; each function imports it when it is called, with the Agg backend so
it works without a display.
"""

from __future__ import annotations

from pathlib import Path

from checks.bank import bank_totals
from checks.verdict import Verdict


def plot_bank_totals(verdict: Verdict, path: str | Path) -> Path:
    """Plot every complete read's total over time against the expected total.

    Good reads are dots on the line; bad ones stand out in red, so the eye
    goes straight to when the invariant broke.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = bank_totals(verdict)
    expected = verdict.details.get("expected_total")
    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=100)
    try:
        good = [(p.time_ms, p.total) for p in points if not p.bad and p.total is not None]
        bad = [(p.time_ms, p.total) for p in points if p.bad and p.total is not None]
        if good:
            ax.scatter(*zip(*good, strict=True), s=12, color="#2b7bba", label="read: total ok")
        if bad:
            ax.scatter(*zip(*bad, strict=True), s=22, color="#d62728", label="read: wrong total")
        if expected is not None:
            ax.axhline(expected, color="#555555", linewidth=1, linestyle="--", label="expected")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("total of all accounts")
        ax.set_title(verdict.summary[:90] + ("..." if len(verdict.summary) > 90 else ""))
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


EDGE_COLORS = {"ww": "#1f77b4", "wr": "#2ca02c", "rw": "#d62728", "rt": "#7f7f7f"}


def plot_txn_cycle(verdict: Verdict, path: str | Path) -> Path | None:
    """Draw the first cycle a txn verdict reports: transactions in a ring,
    each edge coloured and labelled by why one must precede the next.
    None: the verdict reports no cycle."""
    assert verdict.checker == "txn", verdict.checker
    cycles = [a for a in verdict.witness or [] if a.get("steps")]
    if not cycles:
        return None
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = cycles[0]
    names = [s["from"] for s in first["steps"]]
    at = {
        n: (
            math.cos(math.pi / 2 + 2 * math.pi * i / len(names)),
            math.sin(math.pi / 2 + 2 * math.pi * i / len(names)),
        )
        for i, n in enumerate(names)
    }
    rad = 0.25  # arc bend: the two edges of a 2-cycle curve apart
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    try:
        for s in first["steps"]:
            (x1, y1), (x2, y2) = at[s["from"]], at[s["to"]]
            color = EDGE_COLORS.get(s["kind"], "black")
            ax.annotate(
                "",
                xy=(x2, y2),
                xytext=(x1, y1),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": color,
                    "lw": 2,
                    "shrinkA": 16,
                    "shrinkB": 16,
                    "connectionstyle": f"arc3,rad={rad}",
                },
            )
            # The label sits on the arc: halfway to arc3's control point.
            mx, my = (x1 + x2) / 2 + rad * (y2 - y1) / 2, (y1 + y2) / 2 - rad * (x2 - x1) / 2
            ax.text(
                mx,
                my,
                s["kind"],
                color=color,
                ha="center",
                va="center",
                fontsize=11,
                bbox={"boxstyle": "round", "fc": "white", "ec": color},
            )
        for n, (x, y) in at.items():
            ax.text(
                x,
                y,
                n,
                ha="center",
                va="center",
                fontsize=12,
                bbox={"boxstyle": "circle", "fc": "#f0f0f0", "ec": "#333333"},
            )
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.set_title(f"{first['kind']}: not {', '.join(first['violates'])}")
        ax.axis("off")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
