"""Configure exercises: the learner's settings file (a scale, a set of controls) must hold the
spike, and be tight (25% more load collapses; no control is spare)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from learn.catalog import Exercise
from learn.feedback import clip
from learn.outcome import CheckRequest, Outcome, seeds_to_run

if TYPE_CHECKING:  # at run time these come from the learner's workspace, imported late
    from chapters.run import RunResult
    from checks.verdict import Verdict

__all__ = ["cliff", "controls_slo"]


def cliff(ex: Exercise, req: CheckRequest) -> Outcome:
    """The scale in the learner's file holds the spike, and 25% more load does not."""
    import tomllib
    from pathlib import Path

    from chapters.cli import parse_scale
    from chapters.run import simulate

    path = Path(ex.config_file)
    try:
        settings = tomllib.loads(path.read_text())
        text = str(settings["scale"])
        scale = parse_scale(text)
    except FileNotFoundError:
        return Outcome(
            False, f"{ex.config_file} is missing: d11 learn reset {ex.id} writes it again"
        )
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        return Outcome(False, f"{ex.config_file}: {exc}", ['It holds one line: scale = "1/N"'])
    heavier = min(1.0, scale * ex.params["margin"])
    seeds = seeds_to_run(ex, req)
    for seed in seeds:
        held, why = _spike_holds(simulate, scale, seed)
        if not held:
            return Outcome(False, f"at scale {text} the spike does not hold (seed {seed})", [why])
    held, why = _spike_holds(simulate, heavier, seeds[0])
    if held:
        return Outcome(
            False,
            f"{text} holds, but so does {ex.params['margin']:g}x that load: the cliff is further",
            [f"At scale 1/{1 / heavier:.0f}: {why}", "Find a heavier load that still holds."],
        )
    return Outcome(
        True,
        f"scale {text} holds the spike on {len(seeds)} seed(s); "
        f"1/{1 / heavier:.0f} ({ex.params['margin']:g}x the load) collapses",
        [f"At 1/{1 / heavier:.0f}: {why}"],
        truth=text,
    )


def _spike_holds(simulate: Callable[..., RunResult], scale: float, seed: int) -> tuple[bool, str]:
    s = simulate("ch1", "double11", seed=seed, scale=scale, duration_s=4.0, checks=()).summary
    failed = sum(n for kind, n in s["errors"].items() if kind != "declined")
    words = (
        f"{s['payments']} payments, {failed} failed (not counting declines), "
        f"p99 {s['p99_ms']:.0f} ms against a deadline of {s['deadline_ms']:.0f} ms"
    )
    return failed == 0 and s["p99_ms"] < s["deadline_ms"], words


def controls_slo(ex: Exercise, req: CheckRequest) -> Outcome:
    """The learner's controls hold the SLO through the spike, and none of them is spare."""
    import tomllib
    from pathlib import Path

    from chapters.ch6_degrade.wiring import CONTROLS
    from chapters.run import simulate

    try:
        chosen = tomllib.loads(Path(ex.config_file).read_text())["controls"]
    except FileNotFoundError:
        return Outcome(False, f"{ex.config_file} is missing: d11 learn reset {ex.id} writes it")
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        return Outcome(False, f"{ex.config_file}: {exc}", ['It holds one line: controls = ["..."]'])
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        return Outcome(False, f"{ex.config_file}: controls is a list of names, not {chosen!r}")
    unknown = sorted(set(chosen) - set(CONTROLS))
    if unknown:
        return Outcome(False, f"unknown control {unknown[0]!r} (known: {', '.join(CONTROLS)})")
    p = ex.params
    seeds = seeds_to_run(ex, req)

    def slo(controls: list[str], seed: int) -> Verdict:
        run = simulate(
            "ch6", p["scenario"], seed=seed, variant="controls", checks=("slo",),
            extra={"controls": ",".join(controls)},
        )  # fmt: skip
        return run.verdicts["slo"]

    for seed in seeds:
        verdict = slo(chosen, seed)
        if verdict.valid is not True:
            return Outcome(
                False,
                f"with {chosen or 'no controls'} the spike breaks the SLO at seed {seed}",
                [f"  slo: {clip(verdict.summary)}"],
            )
    held = clip(verdict.summary)
    for control in chosen:
        fewer = [c for c in chosen if c != control]
        if all(slo(fewer, seed).valid is True for seed in seeds):
            return Outcome(
                False,
                f"{control!r} is spare: the SLO holds without it too",
                [f"With {fewer}, on seed(s) {', '.join(map(str, seeds))}: the SLO holds.",
                 "Keep only the controls the spike needs."],
            )  # fmt: skip
    return Outcome(
        True,
        f"{', '.join(chosen)} hold(s) the {p['scenario']} spike on seed(s) "
        f"{', '.join(map(str, seeds))}, and none of them is spare",
        [f"  slo: {held}"],
        truth=",".join(chosen),
    )
