"""Which consistency models each anomaly rules out (after Adya and Elle).

The models form a lattice, weakest first; a model rules out everything the
models below it rule out. For each anomaly we name the weakest models that
prohibit it; the history then violates those and every stronger model.

    read uncommitted (PL-1)        G0
    read committed (PL-2)          + G1a, G1b, G1c
    repeatable read (PL-2.99)      + G2-item (so G-single, lost update too)
    snapshot isolation             + G-single, lost update (allows G2-item:
                                     write skew)
    serializable (PL-3)            everything above
    strict serializable            + the same cycles through real-time order

Repeatable read and snapshot isolation are incomparable, so a history can
have two weakest violated models.
"""

from __future__ import annotations

from collections.abc import Iterable

MODELS: tuple[str, ...] = (
    "read uncommitted",
    "read committed",
    "repeatable read",
    "snapshot isolation",
    "serializable",
    "strict serializable",
)

# model -> the models at least as strong (including itself)
STRONGER: dict[str, frozenset[str]] = {
    "read uncommitted": frozenset(MODELS),
    "read committed": frozenset(MODELS[1:]),
    "repeatable read": frozenset({"repeatable read", "serializable", "strict serializable"}),
    "snapshot isolation": frozenset({"snapshot isolation", "serializable", "strict serializable"}),
    "serializable": frozenset({"serializable", "strict serializable"}),
    "strict serializable": frozenset({"strict serializable"}),
}

# --8<-- [start:txn-models]
# anomaly -> the weakest models that prohibit it
PROHIBITED_BY: dict[str, tuple[str, ...]] = {
    # the observations are not of a list or register at all: every model
    "duplicate-elements": ("read uncommitted",),
    "incompatible-order": ("read uncommitted",),
    "garbage-read": ("read uncommitted",),
    "G0": ("read uncommitted",),  # dirty write: a cycle of write-write edges
    "G1a": ("read committed",),  # aborted read
    "G1b": ("read committed",),  # intermediate read
    "G1c": ("read committed",),  # circular information flow (ww + wr cycle)
    # a transaction that does not see its own writes: every transactional
    # model assumes it (Adya implicitly, Cerone's INT axiom explicitly);
    # Elle reports it from read committed up, and so do we
    "internal": ("read committed",),
    "lost-update": ("repeatable read", "snapshot isolation"),
    "G-single": ("repeatable read", "snapshot isolation"),  # read skew
    "G2-item": ("repeatable read",),  # write skew and worse
    "G0-realtime": ("strict serializable",),
    "G1c-realtime": ("strict serializable",),
    "G-single-realtime": ("strict serializable",),
    "G2-item-realtime": ("strict serializable",),
}
# --8<-- [end:txn-models]


def violated(anomalies: Iterable[str]) -> frozenset[str]:
    """Every model the anomalies rule out."""
    out: set[str] = set()
    for a in anomalies:
        for m in PROHIBITED_BY[a]:
            out |= STRONGER[m]
    return frozenset(out)


def weakest(models: Iterable[str]) -> list[str]:
    """The minimal models of a set (those with no weaker model in the set)."""
    ms = set(models)
    return [m for m in MODELS if m in ms and not any(m in STRONGER[w] and w != m for w in ms)]
