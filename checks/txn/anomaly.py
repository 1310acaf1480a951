"""An anomaly found in a transactional history, explained in words."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from checks.txn.models import PROHIBITED_BY

ANOMALIES_PER_KIND_MAX = 20  # anomalies of one kind kept in a report

# What each anomaly is, for a reader who has not met Adya's names.
MEANING: dict[str, str] = {
    "G0": "dirty write: a cycle of write-write dependencies",
    "G1a": "aborted read: a committed transaction saw a write of one that aborted",
    "G1b": "intermediate read: a transaction saw a write its writer later overwrote",
    "G1c": "circular information flow: a cycle of write and read dependencies",
    "G-single": "read skew: a cycle with exactly one anti-dependency (a read that missed a write)",
    "G2-item": "write skew or worse: a cycle with two or more anti-dependencies",
    "G0-realtime": "a write-write cycle once real-time order is added",
    "G1c-realtime": "a write/read dependency cycle once real-time order is added",
    "G-single-realtime": "a one-anti-dependency cycle once real-time order is added",
    "G2-item-realtime": "an anti-dependency cycle once real-time order is added",
    "internal": "a transaction did not see its own earlier reads or writes",
    "lost-update": "two transactions read the same version and both wrote after it",
    "duplicate-elements": "a read of a list holds the same appended value twice",
    "incompatible-order": "two reads of a list disagree on the order of its elements",
    "garbage-read": "a read returned a value that no transaction wrote",
}


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of a cycle: `source` must precede `target`, and why."""

    source: str  # T<n>
    target: str
    kind: str  # ww | wr | rw | rt
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "kind": self.kind, "why": self.why}


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str  # a key of MEANING
    explanation: str  # the whole story, in words
    txns: tuple[str, ...]  # the transactions involved, by name
    steps: tuple[Step, ...] = ()  # for cycles: the edges, in order

    def __post_init__(self) -> None:
        assert self.kind in PROHIBITED_BY, self.kind
        assert self.kind in MEANING, self.kind

    @property
    def violates(self) -> tuple[str, ...]:
        """The weakest models that prohibit this anomaly."""
        return PROHIBITED_BY[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "meaning": MEANING[self.kind],
            "explanation": self.explanation,
            "txns": list(self.txns),
            "steps": [s.to_json() for s in self.steps],
            "violates": list(self.violates),
        }


def cap_per_kind(anomalies: list[Anomaly]) -> list[Anomaly]:
    """The first ANOMALIES_PER_KIND_MAX anomalies of each kind, in order."""
    count: Counter[str] = Counter()
    out = []
    for a in anomalies:
        count[a.kind] += 1
        if count[a.kind] <= ANOMALIES_PER_KIND_MAX:
            out.append(a)
    return out
