"""The learner's component played through hand-written scenarios before the chapter's run:
the TCC fence on a real SQLite table, the broker's second verdict, the breaker's half-open."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from learn.catalog import Exercise
from learn.feedback import WITNESS_ITEMS_MAX
from learn.outcome import CheckRequest, Outcome
from learn.runs import chapter_run, harness

if TYPE_CHECKING:  # at run time these come from the learner's workspace, imported late
    from reference.mq.machine import BrokerMachine
    from reference.node import Context

__all__ = ["breaker_half_open", "broker_verdicts", "fence", "idempotent_consumer"]


class _Raised:
    """A fence call that raised (shown as what it raised, in the scenario's words)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __repr__(self) -> str:
        return f"an exception ({type(self.exc).__name__}: {self.exc})"


def fence(ex: Exercise, req: CheckRequest) -> Outcome:
    """The fence's three pathologies played on a real SQLite table, then the chapter run."""
    failures = _fence_scenarios()
    if failures:
        return Outcome(False, "the fence gets a scenario wrong", failures)
    outcome = harness(ex, req)
    outcome.lines.insert(0, "The fence scenarios pass (idempotence, empty rollback, late try).")
    return outcome


def _fence_scenarios() -> list[str]:
    from reference.sqlstore import Txn
    from reference.tcc import fence as f

    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in f.FENCE_SCHEMA:
        conn.execute(statement)
    ran: list[str] = []

    def action(name: str) -> Callable[[Txn], None]:
        return lambda _txn: ran.append(name)

    def step(what: str, fn: Callable[[Txn], object]) -> object:
        txn = Txn(conn)
        try:
            value = fn(txn)
        except f.FenceRefused as refused:
            txn.rollback()
            return refused
        except (AssertionError, sqlite3.Error) as exc:  # the store would abort the txn
            txn.rollback()
            return _Raised(exc)
        txn.commit()
        return value

    problems: list[str] = []
    # 1. Empty rollback: the cancel of branch b1 arrives, its try never did.
    got = step("cancel", lambda t: f.fence_rollback(t, "x1", "b1", "debit", action("cancel")))
    if got is not True:
        problems.append(
            f"1. cancel x1/b1 with no try before it: fence_rollback returned {got!r}; "
            "an empty rollback succeeds (True), or the coordinator retries it forever."
        )
    if "cancel" in ran:
        problems.append("1. the empty rollback ran the business cancel: there was nothing to undo.")
    # 2. Then the late try of the same branch arrives: it must be refused.
    ran.clear()
    got = step("try", lambda t: f.fence_prepare(t, "x1", "b1", "debit", action("try")))
    if not isinstance(got, f.FenceRefused) or ran:
        problems.append(
            "2. the late try of x1/b1 arrived after its cancel and was accepted: it froze the "
            "money of a transaction that is already over (suspension). The cancel must leave "
            "a row behind that makes this try fail."
        )
    # 3. The cancel delivered twice: the second acts like the first and runs nothing.
    ran.clear()
    got = step("cancel", lambda t: f.fence_rollback(t, "x1", "b1", "debit", action("cancel")))
    if got is not True or ran:
        problems.append(
            f"3. the same cancel delivered twice: the second returned {got!r} and ran "
            f"{ran or 'nothing'}; it must return True and run nothing."
        )
    # 4. The ordinary path still works: try, then cancel, each once.
    ran.clear()
    step("try", lambda t: f.fence_prepare(t, "x2", "b1", "debit", action("try")))
    got = step("cancel", lambda t: f.fence_rollback(t, "x2", "b1", "debit", action("cancel")))
    if ran != ["try", "cancel"] or got is not True:
        problems.append(f"4. try then cancel of x2/b1 ran {ran} and returned {got!r}.")
    # 5. Confirm delivered twice: confirmed once.
    ran.clear()
    step("try", lambda t: f.fence_prepare(t, "x3", "b1", "credit", action("try")))
    first = step("confirm", lambda t: f.fence_commit(t, "x3", "b1", action("confirm")))
    second = step("confirm", lambda t: f.fence_commit(t, "x3", "b1", action("confirm")))
    if ran != ["try", "confirm"] or first is not True or second is not True:
        problems.append(
            f"5. a confirm delivered twice: ran {ran}, answered {first!r} then {second!r}; "
            "the second must answer True and change nothing (idempotence)."
        )
    conn.close()
    return problems


_GROUP, _TOPIC = "payment-service", "payments"


def broker_verdicts(ex: Exercise, req: CheckRequest) -> Outcome:
    """Scripted second verdicts on one half message, then the chapter's run with the audit."""
    from reference.mq.machine import BrokerMachine
    from reference.mq.messages import CheckPass, EndTransaction, Payload, SendHalf

    def broker() -> BrokerMachine:
        b = BrokerMachine()
        b.apply(SendHalf(_GROUP, _TOPIC, "p1", "u1", Payload("p1", "u1", "m1@pay", 500), 0))
        return b

    # (what happens, the verdicts in order: (commit?, from_check?))
    cases = (
        ("the check-back commits, then the producer's own COMMIT arrives late",
         ((True, True), (True, False))),
        ("the producer's COMMIT is delivered twice", ((True, False), (True, False))),
        ("the check-back rolls back, then the producer's own COMMIT arrives late",
         ((False, True), (True, False))),
    )  # fmt: skip
    problems: list[str] = []
    for i, (words, verdicts) in enumerate(cases, 1):
        b = broker()
        if any(from_check for _, from_check in verdicts):
            b.apply(CheckPass(b.config.transaction_timeout_ms + 1))  # the broker asks
        answers = [
            b.apply(EndTransaction(_GROUP, "p1", commit, from_check, 10 + n))
            for n, (commit, from_check) in enumerate(verdicts)
        ]
        audit = b.audit()
        if audit:
            problems.append(f"{i}. {words}: the broker answered {answers}; its audit says:")
            problems += [f"     {line}" for line in audit[:WITNESS_ITEMS_MAX]]
        elif answers[-1][0] != "refused" and not (verdicts[0][0] and answers[-1][0] == "committed"):
            # A repeated COMMIT may be answered "committed" (nothing appended: the
            # audit says so); a COMMIT after a ROLLBACK must be refused.
            problems.append(f"{i}. {words}: the second verdict was answered {answers[-1]!r}")
    if problems:
        return Outcome(False, "a second verdict on one transaction changed the broker", problems)
    ran = chapter_run(ex, req)
    if not ran.passed:
        return ran
    return Outcome(True, "a second verdict changes nothing, whoever sends it; " + ran.headline)


# -- the idempotent consumer and the load-test lane (chapter 5) ---------------------------------


class _Disk:
    """A node's disk as the consumer uses it, remembering every key written."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.written: list[str] = []

    def get(self, key: str, default: object = None) -> object:
        return self.data.get(key, default)

    def put(self, key: str, value: object) -> None:
        self.data[key] = value
        self.written.append(key)

    def sync(self) -> None:
        pass


class _Ctx:
    """Just what a consumer's effect reaches of its node: disk, clock, trace."""

    node_id = "loyalty-1"

    def __init__(self) -> None:
        self.disk = _Disk()

    def now_ms(self) -> float:
        return 10.0

    def trace(self, kind: str, **fields: object) -> None:
        pass


def idempotent_consumer(ex: Exercise, req: CheckRequest) -> Outcome:
    """One load-test event through the learner's loyalty effect, judged by the isolation
    checker on the span of what it wrote; then the chapter's crash run with tagged traffic."""
    from checks.history import Event
    from checks.isolation import LOAD_TEST_TRANSFER, SPAN_F, SPAN_PROCESS, check_isolation
    from reference.mq.consumer import POINTS, ConsumerConfig, MessageConsumer
    from reference.mq.messages import Payload, StoredMessage
    from reference.tracing.context import LOAD_TEST_VALUE, TraceContext

    payment, buyer = "client-1-7", "u7"
    config = ConsumerConfig(
        group="pt_loyalty", topic="pt_payments", queues=(0,), effect="loyalty",
        broker=("broker-1",), record=lambda _event: None,
    )  # fmt: skip
    consumer, ctx = MessageConsumer("loyalty-1", config), _Ctx()
    trace = TraceContext(payment, "s2", "s1", LOAD_TEST_VALUE)
    message = StoredMessage(
        offset=0, msg_id="msg-7", topic="pt_payments", queue_id=0, key=payment,
        body=Payload(payment, buyer, "m3@pay", 1_200), born_ms=0, trace=trace,
    )  # fmt: skip
    consumer._apply_local(cast("Context", ctx), "loyalty-1#0/0", message, trace)
    accounts = sorted({k[len(POINTS) :] for k in ctx.disk.written if k.startswith(POINTS)})
    span = {"trace_id": payment, "span_id": "s2", "parent": "s1", "mark": LOAD_TEST_VALUE,
            "op": "mq.consume", "payment": payment, "writes": accounts, "outcome": "applied",
            "topic": "pt_payments", "group": "pt_loyalty", "node": ctx.node_id}  # fmt: skip
    value = {"id": payment, "from": buyer, "to": "m3@pay", "amount_cents": 1_200}
    history = [
        Event("invoke", 1, LOAD_TEST_TRANSFER, value, 1.0, index=0),
        Event("ok", 1, LOAD_TEST_TRANSFER, value, 5.0, index=1),
        Event("info", SPAN_PROCESS, SPAN_F, span, 10.0, index=2),
    ]
    verdict = check_isolation(history)
    if verdict.valid is not True or not accounts:
        wrote = ", ".join(POINTS + a for a in accounts) or "no points at all"
        lines = [
            f"A load-test payment {payment} by {buyer}: its event reaches the shadow "
            f"loyalty group tagged ({LOAD_TEST_VALUE}); your consumer wrote {wrote}.",
            "The span of that hop, judged by the isolation checker:",
            f"  {span}",
            f"  isolation: {verdict.summary}",
            "A tagged event earns shadow points: the data layer's view of the payload, "
            "`data_view(m.body, trace)`, names the shadow buyer.",
        ]
        earned = "production points" if accounts else "no points"
        return Outcome(False, f"a load-test event earned {earned}", lines)
    return chapter_run(ex, req)


# -- the circuit breaker's half-open state (chapter 6) -----------------------------------------


def breaker_half_open(ex: Exercise, req: CheckRequest) -> Outcome:
    """Scripted probes through a tripped breaker, then the chapter's slow-dependency run."""
    from reference.degrade.breaker import Breaker, BreakerRule

    def tripped() -> Breaker:
        rule = BreakerRule("r", "error-ratio", 0.5, slow_rt_ms=100.0, open_ms=1_000.0, probes=3,
                           probe_timeout_ms=500.0)  # fmt: skip
        b = Breaker(rule)
        for t in range(5):
            assert b.try_pass(float(t))
            b.on_complete(float(t), 1.0, error=True)
        assert b.state == "open", "five errors in a row trip the breaker (not your code)"
        return b

    problems: list[str] = []
    # 1. Three probes, all fine: closed only after the third.
    b = tripped()
    assert all(b.try_pass(1_010.0) for _ in range(3)) and b.state == "half-open"
    states = []
    for n in range(3):
        b.on_complete(1_020.0 + n, 5.0, error=False)
        states.append(b.state)
    if states != ["half-open", "half-open", "closed"]:
        problems.append(
            f"1. three probes of three succeed: the states after each were {states}; "
            "it must stay half-open until all three ended well, then close"
        )
    elif not b.try_pass(1_030.0) or b.state != "closed":
        problems.append("1. once closed, the next call must go through")
    # 2. A probe fails: open again, for open_ms from now.
    b = tripped()
    b.try_pass(1_010.0)
    b.try_pass(1_010.0)
    b.on_complete(1_020.0, 5.0, error=False)
    b.on_complete(1_030.0, 5.0, error=True)
    if b.state != "open" or b.open_until_ms != 2_030.0:
        problems.append(
            f"2. one probe ok, the next fails: state {b.state!r}, open until "
            f"{b.open_until_ms:g} ms; it must be open again until 2030 ms (now + open_ms)"
        )
    elif b.try_pass(1_040.0):
        problems.append("2. right after a failed probe a call went through: it must be refused")
    # 3. A slow probe is a failed probe for a slow-ratio breaker.
    rule = BreakerRule("r", "slow-ratio", 0.5, slow_rt_ms=100.0, open_ms=1_000.0, probes=3)
    b = Breaker(rule)
    for t in range(5):
        b.try_pass(float(t))
        b.on_complete(float(t), 500.0, error=False)
    b.try_pass(1_010.0)
    b.on_complete(1_020.0, 500.0, error=False)
    if b.state != "open":
        problems.append(
            f"3. a slow-ratio breaker's probe took 500 ms (slow beyond 100 ms): state "
            f"{b.state!r}; a slow probe is a bad probe, the breaker opens again"
        )
    # 4. A probe that ended well frees its slot and counts as a success.
    b = tripped()
    b.try_pass(1_010.0)
    b.on_complete(1_011.0, 5.0, error=False)
    if b.probes_out != 0 or b.probes_ok != 1:
        problems.append(
            f"4. after one probe ended well: probes_out={b.probes_out}, probes_ok="
            f"{b.probes_ok}; it is no longer out (0) and counts as a success (1)"
        )
    if problems:
        lines = [
            "A breaker with probes=3, open_ms=1000, tripped by five errors at 0-4 ms; "
            "the first call after 1000 ms turns it half-open.",
            *problems,
        ]
        return Outcome(False, "the half-open breaker does the wrong thing", lines)
    ran = chapter_run(ex, req)
    if not ran.passed:
        return ran
    words = "probes close, reopen and free their slots as they should; "
    return Outcome(True, words + ran.headline)
