"""The verdict every checker returns, so a harness can put them side by side.

A checker answers one question about one history: `valid` is True (no
violation found), False (a violation, with a witness), or "unknown" (the
checker could not decide: its budget ran out, or the history lacks what the
check needs). It never guesses: "unknown" is an answer, not a failure to give
one. `d11 run --json` and the harness gather verdicts in a `checks` map keyed
by checker name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from checks.values import Bool, Float, Map, to_plain

Validity = bool | Literal["unknown"]

# Exit statuses of `d11 check ...`, so scripts and CI can gate on a verdict.
EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2  # also: the history could not be read


def plural(n: int, word: str, words: str = "") -> str:
    """'1 read', '3 reads': a count with its noun agreeing (`words` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


# --8<-- [start:verdict]
@dataclass(frozen=True, slots=True)
class Verdict:
    """One checker's judgement of one history."""

    checker: str  # "bank", "ledger", "txn", "delivery", "lin", ...
    valid: Validity  # True | False | "unknown"
    summary: str  # one or two sentences a person reads first
    details: dict[str, Any] = field(default_factory=dict)  # JSON-ready figures
    witness: Any = None  # the smallest evidence of a violation, JSON-ready

    def __post_init__(self) -> None:
        assert self.valid is True or self.valid is False or self.valid == "unknown", self.valid
        assert self.checker, "a verdict names its checker"

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, 2 unknown."""
        if self.valid == "unknown":
            return EXIT_UNKNOWN
        return EXIT_VALID if self.valid else EXIT_INVALID

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: `json.dumps(verdict.to_json())` always works."""
        return {
            "checker": self.checker,
            "valid": self.valid,
            "summary": self.summary,
            "details": _jsonable(self.details),
            "witness": _jsonable(self.witness),
        }


# --8<-- [end:verdict]


# --8<-- [start:no-client-operations]
NO_CLIENT_OPERATIONS = "no client operations"


def has_client_operations(events: Iterable[Any]) -> bool:
    """Does the history hold any operation of a client (not only nemesis events or spans)?"""
    return any(ev.process not in ("nemesis", "trace") for ev in events)


def no_client_operations(checker: str) -> Verdict:
    """The answer of every checker to a history with nothing to judge: unknown.

    An empty history (or one of nemesis events alone) proves nothing either
    way, so no checker calls it valid: `d11 check` exits 2 on it, whichever
    checker is asked.
    """
    return Verdict(
        checker,
        "unknown",
        f"unknown: {NO_CLIENT_OPERATIONS} in the history (only nemesis events): nothing to judge",
        {"reason": NO_CLIENT_OPERATIONS},
    )


# --8<-- [end:no-client-operations]


def combine(verdicts: Iterable[Verdict]) -> Validity:
    """The validity of several checks together: any False wins, then any unknown."""
    vs = [v.valid for v in verdicts]
    if any(v is False for v in vs):
        return False
    if any(v == "unknown" for v in vs):
        return "unknown"
    return True


def checks_map(verdicts: Iterable[Verdict]) -> dict[str, dict[str, Any]]:
    """The `checks` map of a run report: checker name -> its verdict as JSON."""
    out: dict[str, dict[str, Any]] = {}
    for v in verdicts:
        assert v.checker not in out, f"two verdicts for checker {v.checker}"
        out[v.checker] = v.to_json()
    return out


def _jsonable(x: Any) -> Any:
    """Tuples, sets and frozensets become lists; dict keys become strings;
    canonical values (`checks.values`) their plain JSON selves."""
    if isinstance(x, (Bool, Float, Map)):
        return to_plain(x)
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (set, frozenset)):
        return [_jsonable(v) for v in sorted(x, key=repr)]
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)
