"""The producer's UNKNOWN outcomes, handled as RocketMQ handles them.

- The half message's reply is lost (a send that times out): the producer does
  not run its local transaction and the payment fails (RocketMQ's
  `sendMessageInTransaction` throws before `executeLocalTransaction`); the
  half message, stored after all, is rolled back by the check-back, whose
  fence burns the transfer id so that no late transfer can commit under it.
- The local transaction's reply is lost (RocketMQ's `LocalTransactionState.UNKNOW`):
  the producer sends no verdict; the check-back asks and the fence finds the
  transfer there, so the answer is COMMIT.

The producer runs on a recording context; the broker's state machine applies
what the producer sends; the ledger's answers are written by hand.
"""

from __future__ import annotations

from typing import Any

from reference.ledger import CreateTransfers, Transfer
from reference.ledger.results import CreateTransferResult
from reference.mq.caller import CALL_TIMER
from reference.mq.machine import BrokerMachine
from reference.mq.messages import CheckPass, CheckTransaction, EndTransaction, Payload, PullQuery
from reference.mq.producer import ProducerConfig, TransactionalProducer
from reference.paxos.messages import Propose, ProposeResult
from reference.payment.messages import PayReply, PayRequest
from reference.testing import RecordingContext

GROUP, TOPIC = "payment-service", "payments"


def _transfer(p: Payload, amount: int | None = None) -> Transfer:
    return Transfer(7, 1, 2, p.amount_cents if amount is None else amount, 1, 10)


def _producer(history: list[dict[str, Any]]) -> TransactionalProducer:
    config = ProducerConfig(
        GROUP, TOPIC, "transactional", ("b1",), ("l1",),
        transfer=_transfer, fence=lambda p: _transfer(p, 10**12), record=history.append,
    )  # fmt: skip
    return TransactionalProducer("pay", config)


def _silence(producer: TransactionalProducer, ctx: RecordingContext, only: str = "") -> None:
    """No answer ever comes (to the calls whose request id starts with `only`): fire
    their call timers until the producer gives up."""
    while calls := [
        t for t in ctx.timers
        if isinstance(t, tuple) and t[0] == CALL_TIMER and str(t[1]).startswith(only)
    ]:  # fmt: skip
        for tag in calls:
            ctx.timers.pop(tag)
            producer.on_timer(ctx, tag)


def _to(ctx: RecordingContext, dst: str) -> list[Any]:
    return [m for d, m in ctx.take_sent() if d == dst]


def _check_back(
    producer: TransactionalProducer, ctx: RecordingContext, broker: BrokerMachine, code: str
) -> None:
    """The broker's check pass asks; the ledger answers the fence with `code`."""
    (check,) = broker.apply(CheckPass(60_000))[0]
    assert isinstance(check, CheckTransaction)
    producer.on_message(ctx, "b1", check)
    (fence,) = [m for d, m in ctx.take_sent() if d == "l1"]
    assert isinstance(fence, Propose) and isinstance(fence.command, CreateTransfers)
    producer.on_message(ctx, "l1", ProposeResult(fence.request_id, True, (code,), "l1"))
    (end,) = _to(ctx, "b1")
    assert isinstance(end.command, EndTransaction) and end.command.from_check
    broker.apply(end.command)


def _visible(broker: BrokerMachine) -> list[str]:
    return [
        m.msg_id
        for q in range(broker.config.queues_per_topic)
        for m in broker.pull(PullQuery("g", TOPIC, q, 0, 32, 10**9)).messages
    ]


def test_a_half_message_whose_reply_is_lost_fails_the_payment_and_is_rolled_back() -> None:
    history: list[dict[str, Any]] = []
    ctx, broker, producer = RecordingContext(node_id="pay"), BrokerMachine(), _producer(history)
    producer.on_start(ctx)
    producer.on_message(ctx, "client", PayRequest("r1", "p1", "u1", "m1@pay", 5, 1e9))
    sent = _to(ctx, "b1")
    broker.apply(sent[0].command)  # stored: only the reply is lost
    _silence(producer, ctx, only="half:")
    # Before saying "failed" the producer fences the payment's id in the ledger
    # (another producer may be paying it); the fence fails: it never will be.
    sent_now = ctx.take_sent()
    assert [m for d, m in sent_now if d == "client"] == []
    (fence,) = [m for d, m in sent_now if d == "l1"]
    assert isinstance(fence, Propose) and fence.request_id == "give-up:p1"
    code = CreateTransferResult.EXCEEDS_CREDITS.value
    producer.on_message(ctx, "l1", ProposeResult(fence.request_id, True, (code,), "l1"))
    replies = [m for d, m in ctx.take_sent() if d == "client"]
    assert [(r.payment_id, r.status) for r in replies if isinstance(r, PayReply)] == [
        ("p1", "failed")
    ]
    sends = [e for e in history if e["f"] == "send"]
    assert [e["type"] for e in sends] == ["invoke", "info"]  # maybe stored: not known
    assert not any(e["f"] == "commit" for e in history)  # no local transaction ran
    # The reply turns up after all: too late, it starts nothing.
    producer.on_message(ctx, "b1", ProposeResult("half:p1", True, ("stored", 0), "b1"))
    assert ctx.take_sent() == []
    # The check-back: the fence fails (no transfer under that id), so ROLLBACK.
    _check_back(producer, ctx, broker, CreateTransferResult.EXCEEDS_CREDITS.value)
    assert broker.ops["p1"] == "rolled-back" and _visible(broker) == [] and not broker.audit()
    assert history[-1]["f"] == "rollback" and history[-1]["value"]["by"] == "check"


def test_a_local_transaction_whose_reply_is_lost_is_decided_by_the_check_back() -> None:
    history: list[dict[str, Any]] = []
    ctx, broker, producer = RecordingContext(node_id="pay"), BrokerMachine(), _producer(history)
    producer.on_start(ctx)
    producer.on_message(ctx, "client", PayRequest("r1", "p1", "u1", "m1@pay", 5, 1e9))
    (half,) = _to(ctx, "b1")
    result = broker.apply(half.command)
    producer.on_message(ctx, "b1", ProposeResult(half.request_id, True, result, "b1"))
    (pay,) = _to(ctx, "l1")  # the local transaction: the transfer ...
    _silence(producer, ctx)  # ... whose answer never comes
    assert _to(ctx, "b1") == []  # UNKNOW: no verdict sent, the broker will ask
    commits = [e["type"] for e in history if e["f"] == "commit"]
    assert commits == ["invoke", "info"] and pay.request_id == "pay:p1"
    # The transfer had applied: the fence finds its id taken, so COMMIT.
    _check_back(producer, ctx, broker, CreateTransferResult.EXISTS_WITH_DIFFERENT_AMOUNT.value)
    assert broker.ops["p1"] == "committed" and _visible(broker) == ["p1"]
    assert history[-1]["f"] == "commit" and history[-1]["value"]["by"] == "check"
