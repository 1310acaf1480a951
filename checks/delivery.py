"""The message-delivery checker for the transactional MQ chapter.

A payment and its event must stand or fall together: every message whose
local transaction committed is delivered to every consumer group, no
rolled-back message is ever delivered, messages with the same key arrive in
the order they were produced, and each message's effect is applied exactly
once per group, however often it is delivered (at-least-once delivery plus
idempotent consumers).

History vocabulary (each operation an invoke and its completion; the fields
are read from the completion's value, else the invoke's):

    producer
    f="send"      {"id": msg_id, "key": key}  a half message: stored by the
                  broker, not deliverable until committed
    f="commit"    {"id": msg_id}  ok: the message is committed
    f="rollback"  {"id": msg_id}  ok: the message is rolled back
    f="publish"   {"id": msg_id, "key": key}  a plain message: ok = committed
        A send or publish may name its "topic": one in the load-test lane
        (`pt_payments`, chapter 7) is owed only to the shadow groups (`pt_...`),
        and a production message only to production groups. Which group read
        what it should not is the isolation checker's question.
        A half message whose commit or rollback did not end ok (info, fail,
        or never sent) is indeterminate: the broker's check-back decides,
        so it may be delivered or not, and neither is flagged.

    consumer (process = the consumer instance)
    f="receive"   ok {"id": msg_id, "key": key, "group": group}  a delivery
    f="apply"     ok {"id": msg_id, "group": group}  the consumer applied the
                  message's effect (credited the merchant, ...); ok with
                  "result": "exists": the store that holds the effect and its
                  dedup record says an earlier apply made it (perhaps one whose
                  member died before its answer, left open in the history), so
                  the effect is there once, and this is not a second one
    f="send-back" ok {"id": msg_id, "group": group, "due_ms": t}  the consumer
                  sent the message back to the broker's retry topic, due again
                  at t (RocketMQ's delay levels: 10 s, 30 s, 1 min, ...)
        "group" defaults to "default". Name the groups that must receive
        (`groups=`): a group that received nothing is otherwise unknown to
        the checker. A group that records any apply is
        held to exactly-once effects for every message it received.

Per-key order: if message m1 was committed before m2 was sent (real time,
same key), every group must first receive m1 before it first receives m2.
Redeliveries of m1 after m2 are duplicates, not order violations.

The witness names the events it cites by their line in the run's history.jsonl,
counted from 1 as an editor shows them (a history given whole: its position
plus one; a capstone part's: the line each event carries, `_line`).

Loss is judged at the end of the history: run the consumers until the
queues drain before stopping, or committed messages still in flight will
read as lost. One exception the history itself shows: a message a group
received, did not apply, and sent back for a retry due after the history's
end (within RETRY_SLACK_MS of it) is in flight by the consumer's design, not
lost ("retry-pending", allowed). A retry due well before the end and never
delivered again is a lost effect.

A live view judges a prefix of a run (`final=False`): a committed message
not yet delivered, or delivered and not yet applied, is in flight, not lost;
what a prefix already shows stays a violation (a rolled-back message
delivered, a delivery never sent, a second effect, key order broken). A
prefix that is a recent window of a longer run (`from_start=False`) has lost
the producer's record of the messages sent before its cut: a delivery of
one of those is not judged (not phantom, not out of order).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.history import Event, HistoryError, Operation, pair_operations
from checks.values import is_integer, is_scalar, value_key
from checks.verdict import Verdict, has_client_operations, no_client_operations

MsgId = str | int  # a message id: 1 and "1" are two messages

DEFAULT_GROUP = "default"
SHADOW_PREFIX = "pt_"  # shadow topics and groups (reference.tracing.shadow)
ERRORS_MAX = 50  # violations quoted in the witness (counts stay exact)
ORDER_PAIRS_MAX = 1_000_000  # message pairs compared for order, per key and group
# A retry due this close to the history's end may not be delivered yet (a pull
# polls every 100 ms; a broker elects a leader in ~1 s): still in flight.
RETRY_SLACK_MS = 2_000.0

# kind -> does it make the history invalid?
KINDS: dict[str, bool] = {
    "lost": True,
    "rolled-back-delivered": True,
    "phantom": True,
    "order": True,
    "applied-twice": True,
    "effect-lost": True,
    "duplicate-delivery": False,  # at-least-once delivery allows it
    "retry-pending": False,  # sent back, its retry due after the history's end
}


@dataclass(slots=True)
class Message:
    id: MsgId
    key: Any = None
    # Where the history shows each step (`_line`): history.jsonl's line numbers.
    sent_line: int | None = None  # invoke of send/publish
    committed_line: int | None = None  # ok of commit/publish
    rolled_back_line: int | None = None  # ok of rollback
    shadow: bool = False  # sent to a shadow topic (`pt_...`): owed to shadow groups only

    @property
    def fate(self) -> str:
        if self.committed_line is not None:
            return "committed"
        if self.rolled_back_line is not None:
            return "rolled-back"
        return "indeterminate"


@dataclass(slots=True)
class Problem:
    kind: str
    message_id: MsgId
    group: str
    line: int | None  # the history event that shows it: its line (`_line`)
    words: str
    related: list[MsgId] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.message_id,
            "group": self.group,
            "line": self.line,
            "words": self.words,
            "related": self.related,
        }


def _line(ev: Event) -> int:
    """Where a reader finds `ev`: its line in the run's history.jsonl, counted from 1
    as editors count. A part of the capstone judges its own events, numbered anew
    (`CapstoneDeployment.part_history`), each carrying its line in the whole run's
    history; a history judged whole is numbered as its file."""
    line = ev.extra.get("line")
    return line if isinstance(line, int) else ev.index + 1


def _fields(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ev in (op.invoke, op.completion):
        # (A dict, almost always: told at once, not by the `Mapping` ABC's check.)
        if ev is not None and (type(ev.value) is dict or isinstance(ev.value, Mapping)):
            out.update(ev.value)
    where = f"event {op.invoke.index}"
    if "id" not in out:
        raise HistoryError(f"{where}: {op.f} needs a message id in its value")
    mid = out["id"]
    # Ids compare as Clojure compares them: 1 and "1" are two messages, and
    # an id is a string or an integer, never nil, a boolean or a collection.
    if not (isinstance(mid, str) or is_integer(mid)):
        raise HistoryError(f"{where}: a message id is a string or an integer, got {mid!r}")
    group = out.get("group", DEFAULT_GROUP)
    if not isinstance(group, str):
        raise HistoryError(f"{where}: a consumer group is a string, got {group!r}")
    if "key" in out:
        if not is_scalar(out["key"]):
            raise HistoryError(f"{where}: a message key is a scalar, got {out['key']!r}")
        out["key"] = value_key(out["key"])
    return out


def _producer(ops: Iterable[Operation]) -> dict[MsgId, Message]:
    msgs: dict[MsgId, Message] = {}
    for op in ops:
        if op.f not in ("send", "publish", "commit", "rollback"):
            continue
        v = _fields(op)
        m = msgs.setdefault(v["id"], Message(v["id"]))
        if op.f in ("send", "publish"):
            m.key = v.get("key", m.key)
            m.shadow = str(v.get("topic", "")).startswith(SHADOW_PREFIX)
            if m.sent_line is None:
                m.sent_line = _line(op.invoke)
        if op.type != "ok":
            continue
        assert op.completion is not None
        if op.f in ("commit", "publish") and m.committed_line is None:
            m.committed_line = _line(op.completion)
        elif op.f == "rollback" and m.rolled_back_line is None:
            m.rolled_back_line = _line(op.completion)
        if m.committed_line is not None and m.rolled_back_line is not None:
            raise HistoryError(
                f"event {op.completion.index}: message {m.id} was both committed and "
                "rolled back, by the producer's own account"
            )
    return msgs


# --8<-- [start:delivery-check]
Receipts = dict[tuple[str, MsgId], list[int]]  # (group, id) -> lines of the ok events


def check_delivery(
    events: Sequence[Event],
    *,
    groups: Iterable[str] | None = None,
    final: bool = True,
    from_start: bool = True,
) -> Verdict:
    """Judge delivery and effects for every consumer group (those named in
    `groups`, and every group that received anything).

    `final=False`: `events` is a prefix of a run still going (a live view):
    loss is not judged. `from_start=False`: the prefix starts at a cut, and
    deliveries of messages sent before it are not judged."""
    if not has_client_operations(events):
        return no_client_operations("delivery")
    ops = pair_operations(list(events))
    msgs = _producer(ops)
    receipts, applies, confirmed, all_groups = _consumers(ops, groups)
    end_ms = max((e.time_ms for e in events), default=0.0)
    retries = _retries(ops, end_ms)
    applying = _open_applies(ops)
    problems: list[Problem] = []
    got_by, done_by, confirmed_by = _by_group(receipts), _by_group(applies), _by_group(confirmed)
    keyed = _keyed(msgs)  # (the same for every group)
    for group in sorted(all_groups):
        got, done = got_by.get(group, {}), done_by.get(group, {})
        # Effects in: applied, or an apply's fate told by a later "exists".
        effects = done | confirmed_by.get(group, {})
        problems += _deliveries(msgs, group, got, from_start=from_start)
        if final:  # a prefix: what is not delivered yet may be in flight still
            problems += _owed(msgs, group, got, effects, retries, applying)
        problems += _applied_twice(group, done)
        problems += _order(keyed, group, {mid: idx[0] for mid, idx in got.items()})
    applied_by = {g for g, _ in applies} | {g for g, _ in confirmed}
    words = _effects_words(sorted(all_groups), applied_by)
    return _verdict(msgs, sorted(all_groups), receipts, applies, problems, words, final=final)


def _by_group(found: Receipts) -> dict[str, dict[MsgId, list[int]]]:
    """`found` split by group: group -> {message id: lines}, each in the order found."""
    out: dict[str, dict[MsgId, list[int]]] = defaultdict(dict)
    for (group, mid), lines in found.items():
        out[group][mid] = lines
    return out


def _effects_words(groups: list[str], effect_groups: set[str]) -> str:
    """Whose effects "applied once" covers: only a group whose consumer records its
    applies has effects judged here. `d11 run ch5 --scenario consumer-lag --variant
    no-dedup --seed 2` printed "delivery PASS ... every recorded effect applied once"
    beside "settlement EXPECTED FAILURE (settled-twice x65)": settlement records no
    applies, and the settlement check judges its effects."""
    silent = [g for g in groups if g not in effect_groups]
    if not silent:
        return "every recorded effect applied once"
    recorded = ", ".join(sorted(effect_groups))
    verb = "records" if len(silent) == 1 else "record"
    unjudged = f"{', '.join(silent)} {verb} no effects here, so this check does not judge them"
    if not recorded:
        return unjudged
    return f"every effect recorded ({recorded}) applied once; {unjudged}"


def _consumers(
    ops: Iterable[Operation], groups: Iterable[str] | None
) -> tuple[Receipts, Receipts, Receipts, set[str]]:
    """Who received what (receipts), who applied what (applies), whose apply was
    answered "exists" (confirmed: the effect was in already), and every group
    named or seen."""
    receipts: Receipts = defaultdict(list)
    applies: Receipts = defaultdict(list)
    confirmed: Receipts = defaultdict(list)
    all_groups = set(groups or ())
    for op in ops:
        if op.f in ("receive", "apply") and op.type == "ok":
            assert op.completion is not None
            v = _fields(op)
            group = v.get("group", DEFAULT_GROUP)
            all_groups.add(group)
            if op.f == "receive":
                into = receipts
            else:
                into = confirmed if v.get("result") == "exists" else applies
            into[(group, v["id"])].append(_line(op.completion))
    return receipts, applies, confirmed, all_groups


def _retries(ops: Iterable[Operation], end_ms: float) -> dict[tuple[str, MsgId], tuple[int, float]]:
    """(group, id) -> (history line, due time) of its last send-back whose retry is
    due after `end_ms` - RETRY_SLACK_MS: in flight at the history's end."""
    last: dict[tuple[str, MsgId], tuple[int, float]] = {}
    for op in ops:
        if op.f == "send-back" and op.type == "ok":
            assert op.completion is not None
            v = _fields(op)
            due_ms = v.get("due_ms")
            if not isinstance(due_ms, int | float):
                raise HistoryError(f"event {op.invoke.index}: a send-back needs its due_ms")
            last[(v.get("group", DEFAULT_GROUP), v["id"])] = (_line(op.completion), float(due_ms))
    return {k: v for k, v in last.items() if v[1] > end_ms - RETRY_SLACK_MS}


def _open_applies(ops: Iterable[Operation]) -> dict[tuple[str, MsgId], int]:
    """(group, id) -> history line of its last apply invoked and never completed."""
    out: dict[tuple[str, MsgId], int] = {}
    for op in ops:
        if op.f == "apply" and op.completion is None:
            v = _fields(op)
            out[(v.get("group", DEFAULT_GROUP), v["id"])] = _line(op.invoke)
    return out


def _deliveries(
    msgs: Mapping[MsgId, Message], group: str, got: Mapping[MsgId, list[int]], *, from_start: bool
) -> list[Problem]:
    """What `group` received and should not have: never sent, rolled back, or
    more than once (allowed)."""
    out: list[Problem] = []
    for mid, idx in sorted(got.items(), key=lambda kv: kv[1][0]):
        m = msgs.get(mid)
        if m is None:
            if from_start:  # else: sent before the cut, as far as this window knows
                out.append(Problem("phantom", mid, group, idx[0], "delivered, never sent"))
        elif m.fate == "rolled-back":
            words = f"delivered, though rolled back at history.jsonl line {m.rolled_back_line}"
            out.append(Problem("rolled-back-delivered", mid, group, idx[0], words))
        if len(idx) > 1:
            words = f"delivered {len(idx)} times (history.jsonl lines {idx[:5]})"
            out.append(Problem("duplicate-delivery", mid, group, idx[1], words))
    return out


def _owed(
    msgs: Mapping[MsgId, Message],
    group: str,
    got: Mapping[MsgId, list[int]],
    done: Mapping[MsgId, list[int]],
    retries: Mapping[tuple[str, MsgId], tuple[int, float]],
    applying: Mapping[tuple[str, MsgId], int],
) -> list[Problem]:
    """The committed messages of `group`'s lane it never received, or (if it
    records effects) received and never applied (`done`: applied, or answered
    "exists"): unless its last delivery was sent back for a retry due past the
    history's end (in flight), or that retry, due within the slack of the end,
    was delivered again and its apply is still open when the history ends (in
    flight too: a 2x rehearsal level's history ended 887 ms after a
    notification's retry was due, in the instant its redelivery was applied)."""
    shadow_group = group.startswith(SHADOW_PREFIX)
    out: list[Problem] = []
    for m in msgs.values():
        if m.fate != "committed" or m.shadow != shadow_group:
            continue  # not committed, or another lane's message: not owed to this group
        if m.id not in got:
            words = f"committed at history.jsonl line {m.committed_line}, never delivered"
            out.append(Problem("lost", m.id, group, m.committed_line, words))
        elif done and m.id not in done:
            pending = retries.get((group, m.id))
            if pending is not None and pending[0] > got[m.id][-1]:  # no delivery since
                words = f"sent back, its retry due at {pending[1]:.0f} ms: in flight"
                out.append(Problem("retry-pending", m.id, group, pending[0], words))
            elif pending is not None and applying.get((group, m.id), -1) > pending[0]:
                words = (
                    f"sent back, its retry due at {pending[1]:.0f} ms, delivered again, its "
                    "apply open at the history's end: in flight"
                )
                out.append(Problem("retry-pending", m.id, group, pending[0], words))
            else:
                out.append(
                    Problem("effect-lost", m.id, group, got[m.id][0], "delivered, never applied")
                )
    return out


def _applied_twice(group: str, done: Mapping[MsgId, list[int]]) -> list[Problem]:
    """A message whose effect `group` applied more than once."""
    return [
        Problem(
            "applied-twice",
            mid,
            group,
            idx[1],
            f"effect applied {len(idx)} times (history.jsonl lines {idx[:5]}): the consumer "
            "is not idempotent",
        )
        for mid, idx in done.items()
        if len(idx) > 1
    ]


# --8<-- [end:delivery-check]


def _keyed(msgs: Mapping[MsgId, Message]) -> list[Message]:
    """The messages whose order is judged: committed, with a key and a send in the
    history (one cut off by a window has no send time to order it by)."""
    return [
        m
        for m in msgs.values()
        if m.key is not None and m.fate == "committed" and m.sent_line is not None
    ]


def _order(keyed: Sequence[Message], group: str, first: Mapping[MsgId, int]) -> list[Problem]:
    """Same key, m1 committed before m2 was sent: m1 must be received first
    (`keyed`: the messages `_keyed` judges)."""
    by_key: dict[Any, list[Message]] = defaultdict(list)
    for m in keyed:
        if m.id in first:
            by_key[m.key].append(m)
    out: list[Problem] = []
    for key, ms in by_key.items():
        ms.sort(key=lambda m: first[m.id])  # in the order the group received them
        pairs = 0
        for i, m2 in enumerate(ms):
            for m1 in ms[i + 1 :]:  # received after m2
                pairs += 1
                if pairs > ORDER_PAIRS_MAX:
                    break
                assert m1.committed_line is not None and m2.sent_line is not None
                if m1.committed_line < m2.sent_line:
                    out.append(
                        Problem(
                            "order",
                            m2.id,
                            group,
                            first[m2.id],
                            f"key {key!r}: received before {m1.id} (received at history.jsonl "
                            f"line {first[m1.id]}), though {m1.id} was committed (line "
                            f"{m1.committed_line}) before {m2.id} was sent "
                            f"(line {m2.sent_line})",
                            [m1.id],
                        )
                    )
                    break  # one witness per message is enough
    return out


def _verdict(
    msgs: Mapping[MsgId, Message],
    groups: list[str],
    receipts: Mapping[tuple[str, MsgId], list[int]],
    applies: Mapping[tuple[str, MsgId], list[int]],
    problems: list[Problem],
    effects_words: str,
    *,
    final: bool = True,
) -> Verdict:
    fates = Counter(m.fate for m in msgs.values())
    counts = Counter(p.kind for p in problems)
    details: dict[str, Any] = {
        "messages": len(msgs),
        "committed": fates["committed"],
        "rolled_back": fates["rolled-back"],
        "indeterminate": fates["indeterminate"],
        "groups": groups,
        "deliveries": sum(len(v) for v in receipts.values()),
        "applies": sum(len(v) for v in applies.values()),
        "problems": dict(counts),
    }
    bad = [p for p in problems if KINDS[p.kind]]
    dups = counts["duplicate-delivery"]
    dup_words = f" {dups} messages were delivered more than once (allowed)." if dups else ""
    if counts["retry-pending"]:
        dup_words += (
            f" {counts['retry-pending']} sent back, their retry due after the history's "
            "end (in flight, not judged)."
        )
    if not msgs and not receipts:
        return Verdict("delivery", "unknown", "No messages in the history.", details)
    if not bad and not final:
        # A prefix: what is not delivered yet may still be; say so rather than "all".
        waiting = sum(
            1
            for m in msgs.values()
            if m.fate == "committed" and any((g, m.id) not in receipts for g in groups)
        )
        details["in_flight"] = waiting
        return Verdict(
            "delivery",
            True,
            f"So far: no rolled-back message delivered, key order kept, no effect applied "
            f"twice ({fates['committed']} committed, {waiting} not yet at every group: in "
            f"flight until the final reads).{dup_words}",
            details,
            [p.to_json() for p in problems[:ERRORS_MAX]] or None,
        )
    if not bad:
        return Verdict(
            "delivery",
            True,
            f"All {fates['committed']} committed messages delivered to "
            f"{len(groups)} group(s) in key order, no rolled-back one delivered, "
            f"{effects_words}.{dup_words}",
            details,
            [p.to_json() for p in problems[:ERRORS_MAX]] or None,
        )
    kinds = ", ".join(f"{k} x{counts[k]}" for k in KINDS if KINDS[k] and counts[k])
    first = bad[0]
    return Verdict(
        "delivery",
        False,
        f"{len(bad)} delivery violations ({kinds}). First: message {first.message_id} in "
        f"group {first.group}: {first.words}.{dup_words}",
        details,
        [p.to_json() for p in bad[:ERRORS_MAX]],
    )
