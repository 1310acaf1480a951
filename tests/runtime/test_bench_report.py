"""`d11 bench process`'s report: its budget of one request, its last lines, pgbench's part."""

from __future__ import annotations

from typing import cast

import pytest

from reference.codec import Message
from reference.node import Context
from reference.paxos.messages import ProposeResult
from reference.paxos.replica import Replica
from reference.runtime import pgbench
from reference.runtime.bench import (
    UNREAD_TRACES,
    BenchReport,
    LoadClient,
    ReplicaTuning,
    Stage,
    StageBudget,
    StageWatch,
)
from reference.runtime.examples import Incr

PGBENCH_OUTPUT = """\
transaction type: transfer.sql
number of clients: 8
number of failed transactions: 3 (0.010%)
latency average = 2.345 ms
tps = 3412.5 (without initial connection time)
"""


def report(budget: StageBudget | None = None) -> BenchReport:
    return BenchReport(
        seconds=2.0,
        transfers=9000,
        requests=9000,
        p50_ms=1.5,
        p99_ms=12.25,
        clients=8,
        batch=1,
        fsync=True,
        tuning=ReplicaTuning(),
        budget=budget,
    )


def test_the_last_lines_are_the_three_figures() -> None:
    budget = StageBudget(
        sampled=10,
        stages=[Stage("client to leader", 0.5, 0.4), Stage("accept round", 1.5, 1.2)],
        held={"Accepted": (0.9, 40)},
        slots=5,
        slot_requests=40,
        fsync_ms=(0.45, 12),
        handoff_ms={"r1": (0.35, 0.88, 0.24)},
    )
    text = report(budget).render()
    assert text.splitlines()[-3:] == ["transfers_per_s: 4500", "p50_ms: 1.50", "p99_ms: 12.25"]
    assert "client to leader" in text and "2.00 ms mean" in text  # the stages add up
    assert "Accepted 0.90 ms x 40" in text
    assert "fsyncs themselves (all replicas): 0.45 ms mean x 12" in text  # what the wait is made of
    assert "grouped 8.0 requests a slot" in text
    # Where a held answer's wait goes besides the write: the threads' hand-offs.
    assert "r1: loop to writer 0.35 ms, write 0.88 ms, writer to loop 0.24 ms" in text
    assert "4,000/s target" in text  # one transfer a request: the first target


def test_pgbench_output_is_read() -> None:
    result = pgbench._parse(PGBENCH_OUTPUT, clients=8, seconds=5.0)
    assert (result.tps, result.latency_avg_ms, result.failed) == (3412.5, 2.345, 3)
    with pytest.raises(pgbench.PgbenchUnavailable, match="no tps"):
        pgbench._parse("nothing useful", clients=8, seconds=5.0)


def test_the_comparison_is_skipped_with_a_reason_without_pgbench(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reference.runtime.bench import compare_with_pgbench

    monkeypatch.setattr(pgbench.shutil, "which", lambda name: None)
    lines = compare_with_pgbench(report())
    assert lines == ["  pgbench: skipped (pgbench is not on PATH)"]
    text = report().render()
    assert text.splitlines()[-1] == "p99_ms: 12.25"


class _Tracer:
    """Traces two kinds on every message, as a replica traces each slot it learns."""

    node_id = "r1"

    def on_message(self, ctx: Context, src: str, msg: Message) -> None:
        ctx.trace("paxos.learn", slot=1)
        ctx.trace("paxos.leader", ballot=1)


class _Recording:
    """What a replica's context is to the watch: a clock and a trace sink."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def now_ms(self) -> float:
        return 0.0

    def trace(self, kind: str, **fields: object) -> None:
        self.kinds.append(kind)


def test_the_watch_forwards_every_trace_but_the_unread_kinds() -> None:
    ctx = _Recording()
    watch = StageWatch(cast(Replica, _Tracer()), unread_traces=UNREAD_TRACES)
    watch.on_message(cast(Context, ctx), "c", Incr(1, 1))
    assert ctx.kinds == ["paxos.leader"]
    everything = StageWatch(cast(Replica, _Tracer()))  # the default drops nothing
    everything.on_message(cast(Context, ctx), "c", Incr(2, 1))
    assert ctx.kinds == ["paxos.leader", "paxos.learn", "paxos.leader"]


class _Sending:
    """What the load client's context is to it: a clock, a send and a timer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.now = 0.0

    def now_ms(self) -> float:
        return self.now

    def send(self, dst: str, msg: Message) -> None:
        self.sent.append((dst, msg))

    def set_timer(self, delay_ms: float, tag: object) -> None:
        pass


def test_the_load_client_sends_a_refused_or_late_request_again_as_the_same_object() -> None:
    """The same Propose object each time (the codec remembers a large message's bytes
    by identity): the setup's 1,000 accounts are encoded once, not once a refusal."""
    ctx = _Sending()
    load = LoadClient("load", inflight=1, batch=1, seed=1)
    load.setup(cast(Context, ctx))
    first = ctx.sent[0][1]
    load.on_message(cast(Context, ctx), "r1", ProposeResult("accounts", False, None, "r2"))
    ctx.now = 10 * 1000.0  # long past the request timeout: the sweep sends it again
    load.on_timer(cast(Context, ctx), "sweep")
    assert [dst for dst, _ in ctx.sent] == ["r1", "r2", "r2"]
    assert all(msg is first for _, msg in ctx.sent)
    assert load.sent["accounts"][2] == 3  # tries
    load.on_message(cast(Context, ctx), "r2", ProposeResult("accounts", True, (), None))
    assert load.accounts_ready and not load.sent
