"""`d11 bench degrade`: the controls added one at a time, and the cost of a guarded call."""

from __future__ import annotations

import time

import typer

__all__ = ["register"]

# (label, variant, controls): the storm, then each control added on top of the last.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("none", "none", ""),
    ("naive-retries", "naive-retries", ""),
    ("deadline", "controls", "deadline"),
    ("+ flow rule", "controls", "deadline,flow"),
    ("+ retry budget", "controls", "deadline,flow,budget"),
    ("+ decoupled best effort (controls)", "controls", "deadline,flow,budget,decouple"),
)
GUARDED_CALLS = 200_000


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("degrade")(bench_degrade)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guarded_call_us(calls: int = GUARDED_CALLS) -> float:
    """Microseconds per entry + exit through a flow rule and a hot-parameter rule."""
    from reference.degrade import FlowRule, Guard, GuardConfig, ParamFlowRule

    guard = Guard(GuardConfig(flow=(FlowRule("pay", 1e9),),
                              params=(ParamFlowRule("pay", "merchant", 1e9),)))  # fmt: skip
    args = {"merchant": "m:1"}
    now_ms = 0.0
    start_s = time.perf_counter()
    for _ in range(calls):
        now_ms += 0.01
        entry = guard.entry(now_ms, "pay", caller="gw-edge", args=args)
        guard.exit(now_ms, entry, error=False)  # type: ignore[arg-type]
    return (time.perf_counter() - start_s) / calls * 1e6


def bench_degrade(
    scenario: str = typer.Option("overload-10x", "--scenario", help="overload-3x | overload-10x"),
    seed: int = typer.Option(1, "--seed"),
    calls: int = typer.Option(GUARDED_CALLS, "--calls", help="Guarded calls to time."),
) -> None:
    """Goodput through the spike as each control is added; then the cost of a guarded call."""
    from chapters.run import simulate
    from chapters.stage import StageError

    if scenario not in ("overload-3x", "overload-10x"):
        _fail(f"--scenario must be overload-3x or overload-10x, not {scenario!r}")
    if not 1 <= calls <= 10_000_000:
        _fail(f"--calls must be in [1, 10000000], not {calls}")
    typer.echo(f"{scenario}, seed {seed}: goodput through the spike as a share of capacity")
    typer.echo(f"{'step':<36} {'goodput':>8} {'p99 ms':>8} {'late':>7}  recovered")
    shares: dict[str, float] = {}
    for label, variant, controls in STEPS:
        extra = {"controls": controls} if controls else {}
        try:
            result = simulate("ch6", scenario, variant=variant, seed=seed, extra=extra,
                              checks=("slo",))  # fmt: skip
        except (StageError, ValueError) as exc:
            _fail(str(exc))
            return
        d = result.verdicts["slo"].details
        shares[label] = d["goodput_share"]
        back = d["recovered_after_ms"]
        recovered = "never" if back is None else f"after {back / 1000:.0f} s"
        typer.echo(f"{label:<36} {d['goodput_share']:>8.0%} {d['p99_ms']:>8.0f} "
                   f"{d['served_late']:>7}  {recovered}")  # fmt: skip
    cost_us = guarded_call_us(calls)
    typer.echo(f"guarded call: {cost_us:.2f} us per entry+exit (flow + hot-parameter rule, "
               f"{calls} calls, this process)")  # fmt: skip
    typer.echo(f"goodput_ratio_none: {shares['none']:.2f}")
    typer.echo(f"goodput_ratio_controls: {shares[STEPS[-1][0]]:.2f}")
