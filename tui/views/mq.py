"""Chapter 5's panel: queues and lag per consumer group, half messages, retries, dead letters.

It reads the broker leader's state (`broker_state()`), the consumer groups
and producers the deployment names, and the history's verdicts; below them,
the orderly members' open claims (queue, member, range, how long open) and
the latest steps of a message in the broker's trace topic. Its keys
stall a consumer group (every member paused, as the consumer-lag scenario
does) and kill a producer while payments are between their half message
and their verdict, so the broker's check-back has something to decide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from checks.delivery import check_delivery
from checks.halves import check_half_messages
from reference.mq.machine import BrokerMachine, dlq_topic, retry_topic
from reference.mq.producer import TransactionalProducer
from reference.tracing import is_shadow, shadow_name
from tui.views.base import (
    ChapterView,
    HistoryTail,
    Lines,
    LiveCheck,
    Session,
    ViewError,
    ViewKey,
    final_reads_in,
)

__all__ = ["MqSource", "MqView", "mq_live_checks", "topic_of"]

TOPIC = "payments"
OPEN_SCAN_DONE_MAX = 256  # a producer's payments are scanned newest first until this many done
FIND_OPEN_STEP_MS = 5.0  # killing mid-transaction: look this often for one in flight ...
FIND_OPEN_MAX_MS = 2_000.0  # ... this long at most
LAG_WARN = 100  # a group this many messages behind is shown in the warning colour
HALF_SLACK_MS = 10_000.0  # past a half's last check: a broker election, a late producer
CLAIMS_SHOWN = 4  # open claims listed (the oldest first); the rest counted
TRACE_STEPS_SHOWN = 3  # the latest steps of the latest traced message
TRACE_SCAN_MAX = 4_096  # trace-topic entries read back from its end for them
CLAIM_OLD_MS = 5_000.0  # a claim open this long is shown in the warning colour


class MqSource(Protocol):
    """What chapter 5's deployment exposes that this panel reads."""

    rt: Any
    history: list[Any]
    producers: list[str]
    consumers: dict[str, list[str]]
    broker_config: Any  # reference.mq.BrokerConfig

    def broker_state(self) -> Any: ...  # reference.mq.machine.BrokerMachine | None

    def lanes(self) -> list[tuple[str, str]]: ...  # (consumer group, the topic it reads)


def topic_of(dep: MqSource, group: str) -> str:
    """The topic `group` reads (its lag is counted there): production's groups the
    payments topic, a load test's shadow groups (pt_settlement) the shadow topic."""
    topic = dict(dep.lanes()).get(group)
    if topic is not None:
        return topic
    return shadow_name(TOPIC) if is_shadow(group) else TOPIC


def open_transactions(node: Any) -> int:
    """Payments a producer has started and not finished: half sent, no verdict yet."""
    if not isinstance(node, TransactionalProducer):
        return 0
    open_now = done = 0
    for p in reversed(node.payments.values()):  # the open ones are the newest
        if p.outcome:
            done += 1
            if done >= OPEN_SCAN_DONE_MAX:
                break
        else:
            open_now += 1
    return open_now


class MqView(ChapterView):
    titles = (
        "Queues · consumer lag, half messages, retries",
        "Queues · lag, half messages",
        "Queues",
    )
    keys = (
        ViewKey("l", "stall", "stall group",
                "Stall the selected node's consumer group (none selected: a stalled "
                "group, else settlement): every member paused, its lag grows; l again "
                "resumes it"),
        ViewKey("x", "kill-producer", "kill mid-txn",
                "Kill a producer while payments are between half message and verdict: "
                "the broker's check-back decides them (every 30 s, after 6 s)"),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.tail = HistoryTail()
        self.verdicts: Counter[str] = Counter()
        # When this panel first saw each open claim (the broker keeps no time for
        # one): (group, topic, queue, member, from, to) -> simulated ms.
        self.claims_seen: dict[tuple[str, str, int, str, int, int], float] = {}

    # -- the panel ---------------------------------------------------------------------
    def build(self, session: Session) -> tuple[tuple[tuple[str, str], ...], ...]:
        dep: MqSource = session.dep
        rt = session.rt
        self._count_verdicts(dep)
        out = Lines()
        state = dep.broker_state()
        # At most 8 lines of at most 34 columns: the panel at the smallest screen (100 x 28).
        out.add(f"{'group':<15}{'lag':>6}{'retry':>6}{'dead':>5}", "dim").end()
        for group, members in dep.consumers.items():
            glyph, style = _group_state(rt, members)
            out.add(f"{glyph} ", style).add(f"{group:<13}", "bold")
            if state is None:
                out.add(f"{'?':>6}{'?':>6}{'?':>5}", "dim").end()
                continue
            lag = state.lag(group, topic_of(dep, group))
            retry_wait = state.lag(group, retry_topic(group))
            dead = len(state.queues.get((dlq_topic(group), 0), ()))
            out.add(f"{lag:>6,}", "warn" if lag >= LAG_WARN else "")
            out.add(f"{retry_wait:>6,}", "warn" if retry_wait else "")
            out.add(f"{dead:>5,}", "bad" if dead else "").end()
        cfg = dep.broker_config
        v = self.verdicts
        if state is None:
            out.add("no broker leader now", "warn").end()
        else:
            halves = state.halves
            out.add("half msgs waiting ").add(f"{len(halves):,}", "warn" if halves else "ok")
            if halves:
                oldest = min(halves.values(), key=lambda h: h.offset)
                age_s = (rt.now_ms - state.log[oldest.offset].born_ms) / 1000.0
                out.add(f", oldest {age_s:.0f} s", "dim")
            out.end()
            asked = max((h.checks for h in halves.values()), default=0)
            every_s = cfg.transaction_check_interval_ms / 1000.0
            # The max over halves still waiting: a half asked 8 times and then
            # resolved leaves it, so "asked 0/15" after that check-back read wrong.
            checks = f"{asked}/{cfg.transaction_check_max}"
            out.add(f"  most-asked half {checks}, every {every_s:g} s", "dim")
            out.add("  aside ").add(f"{v['check-max']:,}", "bad" if v["check-max"] else "dim")
            out.end()
        out.add("commit ").add(f"{v['commit']:,}", "ok").add(f" rollback {v['rollback']:,}")
        out.add(" check ").add(f"{v['by-check']:,}", "warn" if v["by-check"] else "").end()
        out.add("in flight", "dim")  # payments between half message and verdict, per producer
        _producers(out, dep, rt)
        out.end()
        if state is not None:  # below the fold on the smallest screen: scroll to them
            self._claims(out, state, rt.now_ms)
            _latest_trace(out, state)
        return out.done()

    # --8<-- [start:tui-claims]
    def _claims(self, out: Lines, state: BrokerMachine, now_ms: float) -> None:
        """The orderly members' open claims: queue, member, [from, to), open how long
        (since this panel first saw it). One that stays open is a member that died
        mid-claim: its queue waits for it, or for its lock's end and the next holder."""
        now = {(*k, lo, hi) for k, (lo, hi) in state.claims.items()}
        self.claims_seen = {c: self.claims_seen.get(c, now_ms) for c in now}
        out.add("claims open ", "dim").add(f"{len(now)}", "warn" if now else "ok").end()
        oldest = sorted(now, key=lambda c: (self.claims_seen[c], c))
        for group, topic, qid, member, lo, hi in oldest[:CLAIMS_SHOWN]:
            age_ms = now_ms - self.claims_seen[(group, topic, qid, member, lo, hi)]
            out.add(f" {group} {topic[:3]}/{qid} ").add(member, "bold")
            style = "warn" if age_ms >= CLAIM_OLD_MS else "dim"
            out.add(f" [{lo},{hi}) ").add(f"{age_ms / 1000:.0f} s", style).end()
        if len(oldest) > CLAIMS_SHOWN:
            out.add(f" … {len(oldest) - CLAIMS_SHOWN} more", "dim").end()

    # --8<-- [end:tui-claims]

    def brief(self, session: Session, out: Lines) -> None:
        """Two lines for the capstone's panel: each group's lag (messages of the topic it
        reads not yet committed by it); halves, check-backs, producers."""
        dep: MqSource = session.dep
        rt = session.rt
        self._count_verdicts(dep)
        state = dep.broker_state()
        out.add("mq ", "bold").add("lag ", "dim")
        for group, members in dep.consumers.items():
            glyph, style = _group_state(rt, members)
            lag = state.lag(group, topic_of(dep, group)) if state is not None else None
            warn = glyph == "‖" or (lag is not None and lag >= LAG_WARN)
            shown = f"{lag:,}" if lag is not None else "?"
            out.add(glyph, style).add(f"{group} ").add(f"{shown} ", "warn" if warn else "")
        out.end()
        halves = len(state.halves) if state is not None else "?"
        v = self.verdicts
        out.add(f"  halves {halves} checked ").add(f"{v['by-check']:,}")
        out.add(" open", "dim")
        _producers(out, dep, rt)
        out.end()

    def _count_verdicts(self, dep: MqSource) -> None:
        for e in self.tail.new(dep.history):
            if e.type != "ok" or e.f not in ("commit", "rollback", "check-max"):
                continue
            self.verdicts[e.f] += 1
            if isinstance(e.value, dict) and e.value.get("by") == "check":
                self.verdicts["by-check"] += 1

    def live_checks(self, session: Session) -> dict[str, LiveCheck]:
        return mq_live_checks(session.dep, session.history_cut)

    # -- the keys ----------------------------------------------------------------------
    def do_stall(self, session: Session, node: str) -> str:
        dep: MqSource = session.dep
        rt = session.rt
        stalled_groups = [
            g for g, ms in dep.consumers.items() if all(rt.status(m) == "paused" for m in ms)
        ]
        # The selected node's group; else the stalled one, so that l after l resumes
        # what the first stalled, whatever was selected between (x selects a producer).
        group = next(
            (g for g, ms in dep.consumers.items() if node in ms),
            stalled_groups[0] if stalled_groups else "settlement",
        )
        members = dep.consumers[group]
        statuses = {m: rt.status(m) for m in members}
        if all(s == "paused" for s in statuses.values()):
            for m in members:
                session.restart(m)  # resumes a paused node
            return f"{group} resumes ({', '.join(members)}): its lag drains"
        stalled = [m for m, s in statuses.items() if s == "up"]
        if not stalled:
            raise ViewError(f"{group}'s members are down: r restarts them")
        for m in stalled:
            session.toggle_node_pause(m)
        return f"{group} stalled ({', '.join(stalled)} paused): watch its lag grow; l resumes"

    def do_kill_producer(self, session: Session, node: str) -> str:
        dep: MqSource = session.dep
        rt = session.rt
        up = [p for p in dep.producers if rt.status(p) == "up"]
        if not up:
            raise ViewError("every producer is down already: r restarts the selected one")
        chosen = [node] if node in up else up
        waited_ms = 0.0
        while True:
            counts = {p: open_transactions(rt.node(p)) for p in chosen}
            victim = max(chosen, key=lambda p: counts[p])
            if counts[victim] or waited_ms >= FIND_OPEN_MAX_MS:
                break
            session.step(FIND_OPEN_STEP_MS)  # no payment in flight this instant: a little later
            waited_ms += FIND_OPEN_STEP_MS
        n = counts[victim]
        session.kill(victim)
        session.select(victim)  # so that r, which acts on the selection, restarts this one
        if not n:
            return (
                f"{victim} killed (no payment was in flight for {FIND_OPEN_MAX_MS / 1000:g} s); "
                f"selected: r restarts it"
            )
        every_s = dep.broker_config.transaction_check_interval_ms / 1000.0
        return (
            f"{victim} killed with {n} payment(s) mid-transaction: their half messages wait "
            f"for the check-back (every {every_s:g} s); {victim} is selected: r restarts it"
        )


def mq_live_checks(
    dep: MqSource,
    history_cut: Callable[[], bool],
    part_history: Callable[[list[Any]], list[Any]] = lambda h: h,
) -> dict[str, LiveCheck]:
    """`delivery` and `half-messages` on a prefix of a run still going.

    A committed message a group has not received yet is in flight, not lost
    (a stalled group holds thousands); a half message younger than its check
    window (the first check's delay, every check the broker may make, some
    slack) may yet be resolved. What a prefix already shows is still red: a
    rolled-back message delivered, a second effect, key order broken. Once
    the final reads are in (j), both judge as at the end of a run.
    `history_cut()`: the session judges a recent window (deliveries of
    messages sent before it are not judged); `part_history`: this chapter's
    events in a merged history (the capstone's).
    """
    groups = list(dep.consumers)
    cfg = dep.broker_config
    open_ms = (
        cfg.transaction_timeout_ms
        + cfg.transaction_check_interval_ms * (cfg.transaction_check_max + 1)
        + HALF_SLACK_MS
    )

    def delivery(history: list[Any]) -> Any:
        events = part_history(history)
        final = final_reads_in(events)
        return check_delivery(events, groups=groups, final=final, from_start=not history_cut())

    def halves(history: list[Any]) -> Any:
        events = part_history(history)
        return check_half_messages(events, open_ms=None if final_reads_in(events) else open_ms)

    return {"delivery": delivery, "half-messages": halves}


def _group_state(rt: Any, members: list[str]) -> tuple[str, str]:
    """(glyph, style) of a consumer group: ✖ a member down, ‖ stalled, ● consuming."""
    statuses = [rt.status(m) for m in members]
    if any(s == "crashed" for s in statuses):
        return "✖", "bad"
    if all(s == "paused" for s in statuses):
        return "‖", "warn"
    return "●", "ok"


def _latest_trace(out: Lines, state: BrokerMachine) -> None:
    """The message last written to the broker's trace topic, and its latest steps
    there (time in s, the node that saw it, the step)."""
    topic = state.trace_topic
    if not topic:
        out.add("trace topic empty", "dim").end()
        return
    msg_id = topic[-1].msg_id
    steps = []
    for entry in reversed(topic[-TRACE_SCAN_MAX:]):
        if entry.msg_id == msg_id:
            steps.append(entry)
            if len(steps) == TRACE_STEPS_SHOWN:
                break
    out.add("trace ", "dim").add(msg_id, "bold").end()
    for entry in reversed(steps):  # the topic's order: as the nodes sent them
        out.add(f" {entry.time_ms / 1000:.1f} {entry.node} ", "dim").add(entry.step).end()


def _producers(out: Lines, dep: MqSource, rt: Any) -> None:
    """Each producer's payments between half message and verdict (or that it is down)."""
    for nid in dep.producers:
        status = rt.status(nid)
        out.add(f" {nid} ")
        if status == "up":
            out.add(f"{open_transactions(rt.node(nid))}", "ok")
        else:
            out.add("✖ down" if status == "crashed" else "‖ paused", "bad")
