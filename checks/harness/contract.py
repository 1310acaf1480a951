"""The stage contract: what the harness needs from whatever it runs.

The harness (`d11 test`, `hunt`, `replay`) runs a *stage* under a workload
and a fault schedule and judges its history. It never knows which chapter
a stage comes from: the command line resolves a chapter name into a stage
at the top, and hands the harness that resolver (`use_stages`). The
chapters implement the protocols below (`chapters.stage.Stage` and
`Deployment`); a test may hand the harness any object that does.

    use_stages(chapters.get_stage)     # once, where the program starts (tui/cli.py)
    stage = stage_named("ch2")         # what the runner does with a spec's chapter
    options = stage.options(seed=7)    # validated, StageError if not
    dep = stage.build(rt, options)
    ...
    judged = judge(dep.run_checks(), dep.expectations("crash"))

Layers: reference <- checks <- chapters <- tui and the CLI. This module is
why the harness can sit below the chapters it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from checks.history import Event
    from checks.verdict import Verdict
    from reference.net.topology import Topology

__all__ = [
    "FINAL_READ_GRACE_MS",
    "DeploymentContract",
    "Expectation",
    "Judgement",
    "Setting",
    "StageContract",
    "StageError",
    "StageSource",
    "by_chance",
    "judge",
    "parse_settings",
    "planted_expectations",
    "stage_named",
    "use_stages",
]

Validity = bool | Literal["unknown"]
# A verdict set against its expectation (see `judge`).
Outcome = Literal["pass", "expected-failure", "unexpected-failure", "unexpected-pass", "unknown"]

# How much longer than its planned end a run waits for final reads queued
# behind a backlog (the monolith after the spike; real processes draining a
# fault on a loaded machine): past it, the checkers judge what there is and
# say "unknown" where a final read is missing. Every runner keeps this bound.
FINAL_READ_GRACE_MS = 60_000.0


class StageError(ValueError):
    """Bad options for a stage (unknown variant, too many shards, ...): one line for a user."""


# --8<-- [start:expectation]
@dataclass(frozen=True)
class Expectation:
    """What a check is expected to say about a scenario, and why."""

    valid: Validity  # True: must pass. False: the stage is expected to break it.
    why: str  # one or two sentences, shown next to the verdict
    # Some failures show in some seeds only (a crash has to land between the
    # debit and the credit): `always=False` means "may fail"; tests then look
    # for the failure across a few seeds instead of in every one.
    always: bool = True


# --8<-- [end:expectation]


@dataclass(frozen=True)
class Judgement:
    """A verdict set against its expectation."""

    check: str
    valid: Validity
    expected: Expectation | None
    outcome: Outcome

    @property
    def ok(self) -> bool:
        """True when the stage behaved as its chapter says it does."""
        return self.outcome in ("pass", "expected-failure", "unknown")


def judge(
    verdicts: Mapping[str, Verdict], expectations: Mapping[str, Expectation]
) -> dict[str, Judgement]:
    """Set each verdict against its expectation (a check with none must pass)."""
    out: dict[str, Judgement] = {}
    for name, verdict in verdicts.items():
        exp = expectations.get(name)
        want: Validity = True if exp is None else exp.valid
        got = verdict.valid
        outcome: Outcome
        if got == "unknown":
            outcome = "unknown"
        elif got is True and want is True:
            outcome = "pass"
        elif got is False and want is False:
            outcome = "expected-failure"
        elif got is False:
            outcome = "unexpected-failure"
        elif exp is not None and not exp.always:
            outcome = "pass"  # a "may fail" that did not fail this seed
        else:
            outcome = "unexpected-pass"
        out[name] = Judgement(name, got, exp, outcome)
    return out


def by_chance(expectations: Mapping[str, Expectation]) -> dict[str, Expectation]:
    """A scenario's expected failures as "may fail", for a run whose faults are random.

    A chapter's own scenario aims its fault (the producer killed between its
    transfer and its event); a nemesis of the same kind strikes where its seed
    says and may miss that window, so a check that holds there is no news: only
    a failure nobody expected is. `d11 test` and the TUI judge by fault kind
    (`spec.scenario_of_faults`), so they judge through this.
    """
    return {n: replace(e, always=False) if e.valid is False else e for n, e in expectations.items()}


# --8<-- [start:contract]
class DeploymentContract(Protocol):
    """A stage built on a runtime, as the harness drives it (`chapters.stage.Deployment`)."""

    rt: Any  # the runtime it was built on (the simulator, or a real backend's staging)
    topology: Topology
    roles: dict[str, list[str]]  # role -> node ids; "client" nodes are never faulted
    history: list[Event]
    timeline: list[tuple[float, str, str]]  # faults and phases: (time_ms, kind, detail)
    end_ms: float

    def record(self, event: dict[str, Any]) -> None:
        """The clients' (and the nemesis's) callback: one Jepsen-style event."""

    def apply_scenario(self, name: str) -> None:
        """Schedule the stage's own scenario `name` (traffic, faults, final phase)."""

    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        """Schedule client traffic over [start_ms, end_ms)."""

    def finish(self, at_ms: float) -> float:
        """Schedule recovery and the final reads at `at_ms`; the time they are done by."""

    def final_reads_done(self) -> bool:
        """True once the final reads the checkers need are in the history."""

    def run_checks(self, history: list[Event] | None = None) -> dict[str, Verdict]:
        """Every check of the stage on `history` (default: the recorded one)."""

    def expectations(self, scenario: str | None = None) -> dict[str, Expectation]:
        """What each check should say under `scenario`."""

    def snapshot(self, window_ms: float = 1000.0) -> dict[str, Any]:
        """The run's figures so far (TPS, latency, errors), JSON-ready."""


@dataclass(frozen=True)
class Setting:
    """A stage's knob a user may set from the command line (`--set NAME=VALUE`).

    A stage lists its own in `Stage.settings`; only those are settable, so a
    misspelt name is an error naming the known ones, never a knob silently
    ignored. `kind` parses the text; `choices` (when given) are its only values.
    """

    help: str
    kind: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    low: float | None = None  # bounds for a number, inclusive
    high: float | None = None
    # A setting that plants a bug (a broker mutation, a node that drops a tag):
    # for a value, the checks that may then fail and why. A run with it set is
    # judged with those as "may fail" (`planted_expectations`), not against the
    # clean stage's expectations, which know only the variant. None: plants nothing.
    plants: Callable[[object], Mapping[str, str]] | None = None

    def parse(self, name: str, text: str) -> Any:
        """The value of `text`, or StageError saying in one line what is wrong."""
        if self.choices and text not in self.choices:
            raise StageError(f"--set {name}: one of {' | '.join(self.choices)}, not {text!r}")
        try:
            value = self.kind(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(self.kind, "a value")
            raise StageError(f"--set {name}: expected {kind}, not {text!r}") from None
        if self.low is not None and value < self.low:
            raise StageError(f"--set {name}: at least {self.low:g}, not {text}")
        if self.high is not None and value > self.high:
            raise StageError(f"--set {name}: at most {self.high:g}, not {text}")
        return value


def planted_expectations(
    settings: Mapping[str, Setting],
    extra: Mapping[str, object],
    expected: Mapping[str, Expectation],
) -> dict[str, Expectation]:
    """`expected` (a variant's and scenario's) with, for every setting of `extra`
    that plants a bug, each check it may break as "may fail" (`always=False`).
    A check the variant already expects to fail keeps that expectation."""
    out = dict(expected)
    for name, setting in settings.items():
        value = extra.get(name)
        if setting.plants is None or value in (None, "", (), [], frozenset()):
            continue
        for check, why in setting.plants(value).items():
            if check not in out or out[check].valid is not False:
                out[check] = Expectation(False, f"planted ({name}={value}): {why}", always=False)
    return out


def parse_settings(
    stage_id: str, settings: Mapping[str, Setting], pairs: list[str]
) -> dict[str, Any]:
    """`["lost_city=shanghai", ...]` -> the stage's extra options, checked one by one."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise StageError(f"--set takes NAME=VALUE, not {pair!r}")
        if not settings:
            raise StageError(f"{stage_id} has no settings: --set {name} does not apply")
        if name not in settings:
            known = ", ".join(sorted(settings))
            raise StageError(f"{stage_id} has no setting {name!r} (known: {known})")
        out[name] = settings[name].parse(name, text.strip())
    return out


class StageContract(Protocol):
    """A runnable system, as the harness sees it (`chapters.stage.Stage`)."""

    id: str
    scenarios: Mapping[str, Any]  # name -> the stage's own scenario
    settings: Mapping[str, Setting]  # what `--set NAME=VALUE` may change

    def options(self, **overrides: Any) -> Any:
        """Validated options (StageError, one line, if they make no sense)."""

    def topology(self, options: Any) -> Topology:
        """Where every node lives (the runtime is built on it)."""

    def build(self, rt: Any, options: Any) -> DeploymentContract:
        """Add the stage's nodes and clients to `rt`, nothing running yet."""

    def variant_shown_under(self, variant: str) -> tuple[str, ...]:
        """The stage's scenarios whose faults show a broken variant's break (none:
        not a broken variant, or one that breaks anywhere)."""


StageSource = Callable[[str], StageContract]
"""A chapter name (or alias) -> its stage; StageError naming the known ones if none."""
# --8<-- [end:contract]

_source: list[StageSource] = []  # at most one: what the program's top installed


def use_stages(source: StageSource) -> None:
    """Install the resolver the harness turns a spec's chapter name into a stage with."""
    _source[:] = [source]


def stage_named(name: str) -> StageContract:
    """The stage a spec names, through the installed resolver (StageError if none)."""
    if not _source:
        raise StageError(
            "no stages to run: the program's top installs a resolver "
            "(checks.harness.contract.use_stages(chapters.get_stage))"
        )
    return _source[0](name)
