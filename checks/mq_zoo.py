"""The broker's bug zoo, hunted by a small-scope explorer.

Each broker mutation (reference/mq/mutations.py) comes with a small world: one
or two transactional messages of one producer, the broker's state machine
(`BrokerMachine`, the very code the Paxos group replicates), and a clock that
moves by check passes. The explorer tries every order of what can happen in
that world, breadth first, so the first schedule that breaks one of the
broker's promises is a shortest one:

- `half m`: the producer stores half message m;
- `decide m commit|rollback`: its local transaction ends (only once m is stored);
- `end m`: the producer's own verdict reaches the broker (one-way: it may
  also never come, which the explorer covers by not choosing it);
- `tick`: `TICK_MS` pass and the leader runs a check pass;
- `answer m`: the producer answers a check about m from what it knows; not
  knowing yet, it answers ROLLBACK (RocketMQ issue 2694: the check found no
  record while the transaction was still running) and may commit afterwards.

The promises, checked after every step: the broker's own audit (a message is
in its topic at most once, only if committed, and every committed one is
there); a check pass asks at most `checks_per_pass_max`; a half message set
aside was asked `transaction_check_max` times first; and a pass does not ask
about a half message again while another one, due since the last pass, has
never been asked (bounded passes take turns). The same worlds without the
mutation must keep every promise to the same depth and beyond, which the
tests check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reference.mq.machine import BrokerConfig, BrokerMachine
from reference.mq.messages import CheckPass, CheckTransaction, EndTransaction, Payload, SendHalf
from reference.mq.mutations import MUTATIONS

__all__ = ["SCENARIOS", "Hunt", "MqScenario", "hunt", "zoo_lines"]

GROUP, TOPIC = "payment-service", "payments"
TICK_MS = 3_000  # half the transaction timeout: a pass may meet a half message too young


@dataclass(frozen=True)
class MqScenario:
    """A small world to hunt one mutation in."""

    messages: tuple[str, ...]
    depth: int  # steps explored (the shortest failing schedule is at most this long)
    check_max: int = 2
    per_pass: int = 1  # checks_per_pass_max

    def config(self, mutations: frozenset[str]) -> BrokerConfig:
        return BrokerConfig(
            transaction_timeout_ms=2 * TICK_MS,
            transaction_check_interval_ms=TICK_MS,
            transaction_check_max=self.check_max,
            checks_per_pass_max=self.per_pass,
            mutations=mutations,
        )


SCENARIOS: dict[str, MqScenario] = {
    "recommit": MqScenario(("m1",), depth=6),
    "commit-after-rollback": MqScenario(("m1",), depth=6),
    "count-young": MqScenario(("m1",), depth=4, check_max=1),
    "unbounded-checks": MqScenario(("m1", "m2"), depth=4),
    "stuck-check-cursor": MqScenario(("m1", "m2"), depth=5, check_max=3),
}
assert SCENARIOS.keys() == MUTATIONS.keys(), "every broker mutation has its world"


@dataclass(frozen=True)
class _World:
    """Everything but the broker's state: the clock and the producer's side."""

    now_ms: int = 0
    stored: frozenset[str] = frozenset()
    truth: tuple[tuple[str, bool], ...] = ()  # local transactions ended: (msg, committed)
    ended: frozenset[str] = frozenset()  # the producer's own verdict sent
    asked: frozenset[str] = frozenset()  # checks not answered yet
    answered: frozenset[str] = frozenset()  # answered a check (once per message suffices)
    checks: tuple[tuple[str, int], ...] = ()  # CheckTransactions sent, per message
    due: frozenset[str] = frozenset()  # old enough to be asked at the last pass

    def decided(self, msg_id: str) -> bool | None:
        return dict(self.truth).get(msg_id)

    def asked_times(self, msg_id: str) -> int:
        return dict(self.checks).get(msg_id, 0)


@dataclass
class Hunt:
    """What the explorer found: a shortest failing schedule, or none to its depth."""

    mutations: frozenset[str]
    schedule: tuple[str, ...] | None  # None: every promise kept
    problem: str = ""
    states: int = 0
    trail: list[str] = field(default_factory=list)  # the schedule, with what each step did

    @property
    def caught(self) -> bool:
        return self.schedule is not None


def _moves(sc: MqScenario, w: _World) -> Iterator[tuple[str, Any]]:
    for m in sc.messages:
        if m not in w.stored:
            yield f"half {m}", ("half", m)
            continue
        if w.decided(m) is None:
            yield f"decide {m} commit", ("decide", m, True)
            yield f"decide {m} rollback", ("decide", m, False)
        elif m not in w.ended:
            yield f"end {m}", ("end", m)
        if m in w.asked and m not in w.answered:
            yield f"answer {m}", ("answer", m)
    yield "tick", ("tick",)


def _step(sc: MqScenario, b: BrokerMachine, w: _World, move: tuple[Any, ...]) -> tuple[_World, str]:
    """Apply one move to `b` (in place); the new world and a problem ("" if none)."""
    kind = move[0]
    if kind == "half":
        m = move[1]
        b.apply(SendHalf(GROUP, TOPIC, m, m, Payload(m, "u1", "m1@pay", 1), w.now_ms))
        return replace(w, stored=w.stored | {m}), ""
    if kind == "decide":
        return replace(w, truth=(*w.truth, (move[1], move[2]))), ""
    if kind == "end":
        m = move[1]
        b.apply(EndTransaction(GROUP, m, bool(w.decided(m)), False, w.now_ms))
        return replace(w, ended=w.ended | {m}), ""
    if kind == "answer":
        m = move[1]
        commit = bool(w.decided(m))  # not decided yet: ROLLBACK (see the module docstring)
        b.apply(EndTransaction(GROUP, m, commit, True, w.now_ms))
        return replace(w, asked=w.asked - {m}, answered=w.answered | {m}), ""
    now_ms = w.now_ms + TICK_MS
    timeout_ms = b.config.transaction_timeout_ms
    eligible = {
        m
        for m, h in b.halves.items()
        if now_ms - b.log[h.offset].born_ms >= timeout_ms and w.asked_times(m) < sc.check_max
    }
    checks, discarded = b.apply(CheckPass(now_ms))
    counts = dict(w.checks)
    asked = [c.msg_id for c in checks if isinstance(c, CheckTransaction)]
    problem = ""
    if len(asked) > sc.per_pass:
        problem = f"a check pass asked {len(asked)} half messages (at most {sc.per_pass})"
    for m in discarded:
        if counts.get(m, 0) != sc.check_max:
            problem = problem or (
                f"{m} set aside after {counts.get(m, 0)} checks (not {sc.check_max})"
            )
    # Taking turns: a half message old enough at the last pass, and never asked
    # since, comes before any half message is asked a second time.
    passed_over = sorted(n for n in (eligible & w.due) - set(asked) if counts.get(n, 0) == 0)
    again = [m for m in asked if counts.get(m, 0) > 0]
    if again and passed_over and not problem:
        problem = (
            f"{again[0]} asked again while {passed_over[0]}, due since the last pass, never was"
        )
    for m in asked:
        counts[m] = counts.get(m, 0) + 1
    w = replace(
        w,
        now_ms=now_ms,
        asked=w.asked | set(asked),
        checks=tuple(sorted(counts.items())),
        due=frozenset(eligible),
    )
    return w, problem


# --8<-- [start:mq-hunt]
def hunt(name: str, *, planted: bool = True, depth: int | None = None) -> Hunt:
    """Breadth-first search of mutation `name`'s world, planted or not (to `depth`
    steps, the scenario's own by default)."""
    sc = SCENARIOS[name]
    if depth is not None:
        sc = replace(sc, depth=depth)
    mutations = frozenset({name}) if planted else frozenset()
    start = BrokerMachine(sc.config(mutations))
    queue: deque[tuple[BrokerMachine, _World, tuple[str, ...]]] = deque([(start, _World(), ())])
    seen = {(start.snapshot(), _World())}
    while queue:
        b, w, schedule = queue.popleft()
        if len(schedule) >= sc.depth:
            continue
        for label, move in _moves(sc, w):
            nb = b.clone()
            nw, problem = _step(sc, nb, w, move)
            problem = problem or "; ".join(nb.audit())
            if problem:
                return Hunt(mutations, (*schedule, label), problem, len(seen))
            key = (nb.snapshot(), nw)
            if key not in seen:
                seen.add(key)
                queue.append((nb, nw, (*schedule, label)))
    return Hunt(mutations, None, "", len(seen))


# --8<-- [end:mq-hunt]


def zoo_lines(
    names: list[str], *, list_only: bool, clean: bool, trace: bool
) -> Iterator[str | int]:
    """`d11 zoo --broker`: its output lines, then its exit status (an int), as
    `d11 zoo` does for Paxos: last line `caught: X/N` (or `safe: X/N` with --clean)."""
    if list_only:
        yield from (f"{name:24} {what}" for name, what in MUTATIONS.items())
        yield 0
        return
    chosen = names or list(MUTATIONS)
    unknown = [n for n in chosen if n not in MUTATIONS]
    if unknown:
        yield f"error: unknown mutation {', '.join(unknown)} (see d11 zoo --broker --list)"
        yield 2
        return
    good = 0
    for name in chosen:
        found = hunt(name, planted=not clean)
        good += found.caught != clean
        if clean:
            verdict = "safe" if not found.caught else f"UNSAFE {found.problem}"
            yield f"{name:24} {verdict} [{found.states} states, {SCENARIOS[name].depth} steps deep]"
            continue
        if not found.caught:
            yield f"{name:24} MISSED [{found.states} states]"
            continue
        assert found.schedule is not None
        yield f"{name:24} caught  {found.problem} [{len(found.schedule)} steps]"
        if trace:
            yield from (f"    {i:2}. {step}" for i, step in enumerate(found.schedule, 1))
    yield f"{'safe' if clean else 'caught'}: {good}/{len(chosen)}"
    yield 0 if good == len(chosen) else 1
