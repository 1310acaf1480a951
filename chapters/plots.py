"""Plots of a run: TPS (offered, goodput, errors) and p99 latency over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_run"]


def plot_run(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Write tps.png and latency.png into `folder`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = summary["series"]
    t_s = [t / 1000.0 for t in series["t_ms"]]
    title = f"{summary['chapter']} {summary['scenario']} (seed {summary['seed']})"
    faults = [(t / 1000.0, kind) for t, kind, _ in summary.get("timeline", [])]
    paths = []

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t_s, series["offered_tps"], label="offered", color="tab:gray")
    ax.plot(t_s, series["goodput_tps"], label="goodput (ok within deadline)", color="tab:green")
    ax.plot(t_s, series["error_tps"], label="errors and timeouts", color="tab:red")
    _mark(ax, faults)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("payments / s (simulated)")
    ax.set_title(f"{title}: throughput")
    ax.legend(loc="upper right")
    fig.tight_layout()
    paths.append(folder / "tps.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t_s, series["p99_ms"], label="p99 reply latency", color="tab:purple")
    ax.axhline(summary["deadline_ms"], color="tab:red", linestyle="--", label="deadline")
    _mark(ax, faults)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("ms")
    ax.set_yscale("symlog")
    ax.set_title(f"{title}: latency")
    ax.legend(loc="upper left")
    fig.tight_layout()
    paths.append(folder / "latency.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def _mark(ax: Any, faults: list[tuple[float, str]]) -> None:
    for t_s, kind in faults:
        if kind in ("crash", "partition", "failover", "restart", "heal"):
            ax.axvline(t_s, color="tab:orange", alpha=0.5, linestyle=":")
            ax.annotate(kind, (t_s, 0), rotation=90, fontsize=7, color="tab:orange")
