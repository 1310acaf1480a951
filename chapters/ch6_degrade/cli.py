"""`d11 bench degrade` (the controls added one at a time, the cost of a guarded call) and
`d11 degrade drill` (rules and switches changed live during a run, every change in the history)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import typer

from reference.cli_options import seed_range

if TYPE_CHECKING:
    from checks.history import Event
    from checks.verdict import Verdict

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
PAY_GATEWAY = "gw-pay"
# A verdict as the harness's reports word it (`checks/harness/report.py`), not Python's
# True and False.
VERDICT_WORDS: dict[object, str] = {True: "valid", False: "INVALID", "unknown": "unknown"}


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("degrade")(bench_degrade)
    degrade = typer.Typer(help="Chapter 6: change degrade rules and switches live.")
    degrade.command("drill")(drill)
    app.add_typer(degrade, name="degrade")


def drill(
    scenario: str = typer.Option("overload-3x", "--scenario", help="A chapter 6 scenario."),
    variant: str = typer.Option("controls", "--variant", help="controls | none | naive-retries"),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="The run's seed: same seed, same run."
    ),
    at_s: float = typer.Option(3.0, "--at-s", help="When the change is made (simulated s)."),
    flow_qps: float = typer.Option(
        -1.0,
        "--flow-qps",
        show_default=False,
        help="New count of the flow rule on pay, payments/s (default: the rule is left as it is).",
    ),
    switch: list[str] = typer.Option([], "--switch", help="PATH=on|off, e.g. loyalty=off."),
    back_s: float = typer.Option(
        0.0,
        "--back-s",
        show_default=False,
        help="When to undo (simulated s, after --at-s): the rule's own count again, the "
        "switches back to the plan (default: never).",
    ),
    backend: str = typer.Option(
        "sim", "--backend", help="sim, or process|docker: the sidecars in their own processes."
    ),
) -> None:
    """Run a scenario and change its controls while it runs.

    Each change is pushed to every payment gateway until acknowledged, and
    recorded in the history. On process or docker the control plane runs in
    this process and each payment gateway's sidecar in its own: the pushes,
    re-sends and acknowledgements cross real sockets, and each gateway's
    `degrade:applied` record comes back from its process.

    Exit status: 0 no money went wrong (a drill may cost goodput, never money),
    1 the bank or ledger check found a violation, 2 an error (a bad option,
    nothing to change).
    """
    from chapters.ch6_degrade.stage import REAL_DB_SLOWDOWN, capacity_tps
    from chapters.ch6_degrade.wiring import RATE_SHARE
    from chapters.stage import StageError, StageOptions
    from checks.harness.runner import HarnessError

    slowdown = 1.0 if backend == "sim" else REAL_DB_SLOWDOWN  # the pace of real backends
    capacity = capacity_tps(StageOptions(extra={"db_slowdown": slowdown}))
    from chapters import get_stage

    known = get_stage("ch6").scenarios
    if scenario not in known:  # before "nothing to change": the first mistake first
        _fail(f"ch6 has no scenario {scenario!r} (known: {', '.join(known)})")
    changes: list[tuple[float, str, object]] = []
    if flow_qps >= 0:
        changes.append((at_s * 1000.0, "flow-qps", flow_qps))
        if back_s:  # the chapter's own count again
            changes.append((back_s * 1000.0, "flow-qps", round(RATE_SHARE * capacity, 2)))
    for sw in switch:
        changes.append((at_s * 1000.0, "switch", sw))
        if back_s:
            changes.append((back_s * 1000.0, "switch", sw.partition("=")[0] + "=plan"))
    if not changes:
        _fail("nothing to change: give --flow-qps and/or --switch PATH=on|off")
    if back_s and back_s <= at_s:
        _fail(f"--back-s must come after --at-s ({at_s:g}), not {back_s:g}")
    try:
        history, verdicts = _drill_run(scenario, variant, seed, changes, backend)
    except (StageError, ValueError, HarnessError) as exc:
        _fail(str(exc))
        return
    where = "" if backend == "sim" else f", backend {backend}"
    typer.echo(f"drill: ch6 {scenario}, variant {variant}, seed {seed}{where}")
    shed: dict[str, list[int]] = {}
    for e in history:
        if e.f == "degrade:change":
            what = f"flow-qps {e.value['flow_qps']:g}" if e.value["flow_qps"] is not None \
                else "switch " + "=".join(e.value["switch"])  # fmt: skip
            typer.echo(f"{e.time_ms:>8.0f} ms  change v{e.value['version']}: {what}")
        elif e.f == "degrade:applied":
            typer.echo(f"{e.time_ms:>8.0f} ms  {e.value['node']} holds v{e.value['version']}")
        elif e.f == "degrade:best-effort":
            counts = shed.setdefault(e.value["path"], [0, 0])
            counts[e.value["outcome"] == "shed"] += 1
    for path, (done, dropped) in sorted(shed.items()):
        typer.echo(f"best effort {path}: {done} done, {dropped} shed")
    for name, verdict in verdicts.items():
        typer.echo(f"{name}: {VERDICT_WORDS[verdict.valid]} - {verdict.summary}")
    if any(verdicts[c].valid is False for c in ("bank", "ledger")):
        raise typer.Exit(1)  # a drill may cost goodput, never money


def _drill_run(
    scenario: str, variant: str, seed: int, changes: list[tuple[float, str, object]], backend: str
) -> tuple[list[Event], dict[str, Verdict]]:
    """(history, verdicts) of the drill's run, on the simulator or a real backend."""
    if backend == "sim":
        from chapters.run import simulate

        result = simulate("ch6", scenario, variant=variant, seed=seed,
                          extra={"changes": tuple(changes)})  # fmt: skip
        return result.history, result.verdicts
    from checks.harness.runner import HarnessError, TestSpec, run_test

    if backend not in ("process", "docker"):
        raise HarnessError(f"--backend must be sim, process or docker, not {backend!r}")
    text = [f"{at_ms:g}:{what}:{value}" for at_ms, what, value in changes]  # a spec holds text
    spec = TestSpec("ch6", scenario=scenario, variant=variant, seed=seed, backend=backend,
                    extra={"changes": text})  # fmt: skip
    real = run_test(spec)
    return real.history, real.verdicts


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guarded_call_us(calls: int = GUARDED_CALLS) -> float:
    """CPU microseconds per entry + exit through a flow rule and a hot-parameter rule."""
    return guarded_call_cost_us(calls)[0]


def guarded_call_cost_us(calls: int = GUARDED_CALLS) -> tuple[float, float]:
    """(CPU, wall) microseconds per entry + exit through a flow rule and a hot-parameter
    rule. CPU time is this process's own: on a machine shared with other work it is the
    figure that means something; wall time is what a call waits, the machine's too."""
    from reference.degrade import Blocked, FlowRule, Guard, GuardConfig, ParamFlowRule

    guard = Guard(GuardConfig(flow=(FlowRule("pay", 1e9),),
                              params=(ParamFlowRule("pay", "merchant", 1e9),)))  # fmt: skip
    args = {"merchant": "m:1"}
    now_ms = 0.0
    start_cpu_s, start_s = time.process_time(), time.perf_counter()
    for _ in range(calls):
        now_ms += 0.01
        entry = guard.entry(now_ms, "pay", caller="gw-edge", args=args)
        if isinstance(entry, Blocked):  # what every caller checks (never here: a huge count)
            continue
        guard.exit(now_ms, entry, error=False)
    cpu_s, wall_s = time.process_time() - start_cpu_s, time.perf_counter() - start_s
    return cpu_s / calls * 1e6, wall_s / calls * 1e6


def _bare(now_ms: float, resource: str, *, caller: str = "") -> float:
    return now_ms


def bare_call_us(calls: int = GUARDED_CALLS) -> float:
    """CPU microseconds per call of a function that does nothing: the yardstick here."""
    now_ms = 0.0
    start_s = time.process_time()
    for _ in range(calls):
        now_ms += 0.01
        _bare(now_ms, "pay", caller="gw-edge")
    return (time.process_time() - start_s) / calls * 1e6


def bench_degrade(
    scenario: str = typer.Option("overload-10x", "--scenario", help="overload-3x | overload-10x"),
    seed: int = typer.Option(
        1, "--seed", callback=seed_range(), help="Seed of every run: same seed, same figures."
    ),
    calls: int = typer.Option(GUARDED_CALLS, "--calls", help="Guarded calls to time."),
) -> None:
    """Goodput through the spike as each control is added; then the cost of a guarded call.

    Columns: goodput as a share of capacity, p99 of acknowledged payments,
    requests the database started after their deadline, tries sent to the
    database per payment offered, and when goodput was back after the spike."""
    from chapters.run import simulate
    from chapters.stage import StageError

    if scenario not in ("overload-3x", "overload-10x"):
        _fail(f"--scenario must be overload-3x or overload-10x, not {scenario!r}")
    if not 1 <= calls <= 10_000_000:
        _fail(f"--calls must be in [1, 10000000], not {calls}")
    typer.echo(f"{scenario}, seed {seed}: goodput through the spike as a share of capacity")
    typer.echo(f"{'step':<36} {'goodput':>8} {'p99 ms':>8} {'late':>7} "
               f"{'db tries':>9}  recovered")  # fmt: skip
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
        telemetry = result.deployment.rt.telemetry  # type: ignore[attr-defined]
        tries = telemetry.counter("tries_out", scope=PAY_GATEWAY)  # what gw-pay sent the db
        payments = sum(1 for e in result.history if e.type == "invoke" and e.f == "transfer")
        per_payment = tries / max(payments, 1)
        typer.echo(f"{label:<36} {d['goodput_share']:>8.0%} {d['p99_ms']:>8.0f} "
                   f"{d['served_late']:>7} {per_payment:>9.2f}  {recovered}")  # fmt: skip
    cost_us, wall_us = guarded_call_cost_us(calls)
    bare_us = bare_call_us(calls)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    typer.echo(f"guarded call: {cost_us:.2f} us CPU per entry+exit (target 5; wall "
               f"{wall_us:.2f} us at load {load:.1f}; flow + hot-parameter rule, {calls} calls, "
               f"this process) = {cost_us / bare_us:.0f} bare Python function calls "
               f"({bare_us:.3f} us CPU each here)")  # fmt: skip
    typer.echo(f"goodput_ratio_none: {shares['none']:.2f}")
    typer.echo(f"goodput_ratio_controls: {shares[STEPS[-1][0]]:.2f}")
