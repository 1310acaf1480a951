"""The capstone: Double 11 night, chapters 4 to 7 on one simulator.

Four systems share one clock, one network and three cities; two of them
are one payment pipeline (`pipeline.py`):

- `cells` and `mq`, chapters 4 and 5 as one pipeline: a payment enters
  through chapter 3's routing (the gateway of its uid's cell) and is the
  local transaction of chapter 5's transactional producer, that cell's
  payment service: half message on the broker, the transfer in the payer's
  cell's ledger group (chapter 4's Multi-Paxos across the three cities,
  reached through `reference.mq.caller.ledger_groups`), commit or rollback,
  the check-back fencing the transfer in that group. Settlement consumers
  move each payment from the merchant's escrow in that cell to its settled
  twin beside it. No payment crosses cells (chapter 4 lands it in the
  payer's cell's merchant sub-account): one transfer, one group, twice;
- `degrade`: chapter 6, the payment core behind its degrade controls;
- `rehearsal`: chapter 7, full-link load-test traffic (tagged, traced, into
  shadow accounts) mixed into chapter 2's sharded platform.

The `double11` scenario runs every chapter's own midnight spike (aligned:
midnight is one instant for all), loses a whole city at the peak (any of
the three, `lost_city`; the GZone's, Hangzhou, by default), stalls the
settlement consumer group and its shadow twin (`pt_settlement`, the load
test's lane) for `lag_ms` after it and measures how long each takes to
drain, and judges every checker of every chapter, named
`chapter:check`: chapter 4's on the clients' payments with each settlement
as the ledger transfer it is, chapter 5's on the producers' and consumers'
events with the clients' balance reads, and the capstone's own
`double11:pipeline` end to end (every payment a user saw paid settled
exactly once; nothing else settled) and `double11:one-owner`.

Chapter 6's degrade controls stand at the pipeline's door: every cell's
gateway (the elastic cell's too) is chapter 6's sidecar around chapter 3's
gateway (`parts.entry_controls`): deadlines, a flow rule sized to the
gateway's share of the pipeline (`parts.GATEWAY_CAPACITY_TPS`), a hot-merchant
rule. A payment past them is refused at once (`flow:pay`, no effect). The
`ch6:` checks judge that door from the history (`door.py`): `ch6:slo`,
chapter 6's SLO checker on the pipeline's payments through the night's
midnight (the door's records: no work started after its deadline), and
`ch6:ledger`, every payment the door refused did nothing.

What this does not claim: chapter 6's own system still runs beside the
pipeline (`degrade`: its payment core, its best-effort dependencies, its
retry budget, switches and degrade plan), judged by its own checkers as
`ch6:core-slo`, `ch6:core-ledger` and `ch6:core-bank`. It stays because the
door has no best-effort work for a plan to shed (the pipeline's loyalty and
notification are chapter 5's events, off the payment's path): shedding by
plan, the retry budget and the TUI's switch, slow-dependency and flow-rule
keys are shown there, not at the door. Chapter 7's load test runs through
the pipeline too (a share of the cells' payments tagged, into shadow
accounts, the shadow topic and the shadow groups; `ch5:isolation` judges
it), beside chapter 7's own system on chapter 2's shards; one kill switch
stops both (`parts.NightRehearsal`), on the simulator and on real processes.
Chapters 6 and 7 are one-city systems and live in a city that survives
(`parts.host_city`), hit by the same night and judged by their own
checkers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from chapters.capstone.door import CORE_PREFIX, door_checks
from chapters.capstone.elastic import (
    ELASTIC_CELL,
    HANDOVER_EVENTS,
    check_owners,
    handover_figures,
)
from chapters.capstone.parts import (
    PART_STAGES,
    Layout,
    NightRehearsal,
    merge_layouts,
    part_layout,
)
from chapters.capstone.pipeline import (
    LEAKS,
    LOAD_TEST_SHARE,
    VIEWS,
    PipelineQueue,
    View,
    check_pipeline,
    lanes_of,
    pipeline_figures,
    record_spans,
)
from chapters.ch4_paxos.stage import CITIES, PaxosDeployment
from chapters.ch4_paxos.stage import LOST_CITY as CELLS_LOST_CITY
from chapters.ch5_mq.stage import MqDeployment
from chapters.common import SPIKE_AT_MS, STEADY_SHARE, expect
from chapters.report import SystemTimeouts
from chapters.scenarios import WARMUP_MS
from chapters.stage import (
    Deployment,
    Expectation,
    Runtime,
    Scenario,
    Setting,
    Stage,
    StageError,
    StageOptions,
)
from checks.history import Event, pair_operations, paired_once
from checks.isolation import LOAD_TEST_TRANSFER
from checks.transfers.history import ABSENT, APPLIED
from checks.verdict import Verdict
from reference.cells import MoveRange
from reference.gateway.router import even_buckets
from reference.mq.machine import retry_topic
from reference.net.topology import Topology
from reference.telemetry import TraceEvent
from reference.traffic.plan import DEFAULT_SCALE

__all__ = ["STAGE", "CapstoneDeployment", "CapstoneStage", "lose_city", "stall_lagging_group"]

CITY_NAMES = tuple(city for city, _ in CITIES)
DEFAULT_LOST_CITY = "hangzhou"  # the GZone's city: the hardest one to lose
PEAK_AFTER_MIDNIGHT_MS = 10.0  # the spike climbs for 1 s of the day: 10 ms at 100x speed
LAG_AFTER_PEAK_MS = 200.0  # the settlement group stalls this long after the city is lost
LAG_MS = 1_500.0  # ... for this long (`lag_ms`)
LAG_POLL_MS = 50.0
LAGGING_GROUP = "settlement"
DEGRADE_AFTER_MS = 8_000.0  # chapter 6's calm after the spike (its own default: 32 s)
ELASTIC_BEFORE_MS = 400.0  # the elastic cell takes its range this long before midnight
ELASTIC_BACK_AFTER_MS = 600.0  # ... and gives it back this long after the peak
# The capstone's own checks, on the whole history.
OWN_CHECKS: dict[str, Callable[[list[Event]], Verdict]] = {
    "double11:one-owner": check_owners,
    "double11:pipeline": check_pipeline,
}
PART_ORDER = ("cells", "mq", "degrade", "rehearsal")


# --8<-- [start:leak-breaks]
# What a pipeline node that drops the tag breaks (`--set leak=...`): isolation
# must catch every one; the money checks see what the leaked payments did.
_MOVED = "tagged payments moved production money that no production payment explains"
LEAK_BREAKS: dict[str, dict[str, str]] = {
    "gateway": {
        "ch5:isolation": "a cell gateway drops the tag: tagged payments pay from real wallets",
        "ch4:ledger": _MOVED,
        "ch4:lin": "a wallet's reads see debits no payment of its history made",
    },
    "producer": {
        "ch5:isolation": "a payment service drops the tag: test events reach production "
        "consumers, their transfers real wallets",
        "ch4:ledger": _MOVED,
        "ch4:lin": "a wallet's reads see debits no payment of its history made",
    },
    "consumer": {
        "ch5:isolation": "the shadow settlement group drops the tag: test events settle "
        "real escrows",
        "ch4:ledger": _MOVED,
        "ch5:settlement": "real merchants are settled for load-test payments",
        "ch4:bank": "settling test payments from real escrow may drive it below zero",
        "ch5:bank": "settling test payments from real escrow may drive it below zero",
    },
}
# --8<-- [end:leak-breaks]


def leak_breaks(value: object) -> dict[str, str]:
    """The checks a planted tag-dropping pipeline node may break."""
    return LEAK_BREAKS.get(str(value), {})


def lost_city(options: StageOptions) -> str:
    return str(options.extra.get("lost_city", DEFAULT_LOST_CITY))


def host_city_for(lost: str) -> str:
    """The first city that is not lost: where the one-city systems live."""
    return next(c for c in CITY_NAMES if c != lost)


class CapstoneDeployment(Deployment):
    """The four parts on one runtime; their histories merged, their checks prefixed."""

    def __init__(self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology):
        self._own: list[Event] = []  # the harness's and the capstone's own notes
        self._own_timeline: list[tuple[float, str, str]] = []
        self._merged: tuple[tuple[int, ...], list[Event]] | None = None
        super().__init__(stage, rt, options, topology)
        self.parts: dict[str, Deployment] = {}
        self.chapter_of: dict[str, str] = {}
        # Checks on the merged history that no one part owns (chapter 6's at the door).
        self.whole_checks: dict[str, Callable[[list[Event]], Verdict]] = {}
        self.lost: tuple[float, str] | None = None  # (when, city)
        self.midnight_ms = 0.0
        self.stalls: dict[str, Stall] = {}  # the lag drill's groups, production's first
        # (time_ms, kind, node, version): the failover's steps, from telemetry.
        self.routing_events: list[tuple[float, str, str, int]] = []

    # -- one history out of four -------------------------------------------------------
    @property  # type: ignore[override]
    def history(self) -> list[Event]:
        """Every part's history and the capstone's own events, in time order; each
        event's `extra["part"]` names its part ("" for the capstone's own), and
        a client's numbered process is prefixed with its part's name."""
        key = self._history_key()
        if self._merged is not None and self._merged[0] == key:
            return self._merged[1]
        # Each part numbers its clients' processes from the same start: in one
        # history they are told apart by their part ("cells/1000000"), and the
        # original is kept to give each part's checkers back their own. Named
        # processes ("nemesis", "trace", "broker") are one part's each, or the
        # history's own kind of event, and keep their names.
        in_order = self._in_order()
        merged = [_merged_event(e, i, name) for i, (_, _, _, e, name) in enumerate(in_order)]
        self._merged = (key, merged)
        return merged

    @history.setter
    def history(self, events: list[Event]) -> None:
        self._own = events

    def _history_key(self) -> tuple[int, ...]:
        return (len(self._own), *(len(p.history) for p in self.parts.values()))

    def _in_order(self) -> list[tuple[float, int, int, Event, str]]:
        """Every event of the parts and the capstone's own, in the merged history's
        order (time, then part, then the part's own order), with its part's name."""

        def tagged() -> list[tuple[float, int, int, Event, str]]:
            out: list[tuple[float, int, int, Event, str]] = []
            for rank, (name, part) in enumerate([("", None), *self.parts.items()]):
                events = self._own if part is None else part.history
                out += [(e.time_ms, rank, e.index, e, name) for e in events]
            return out

        # Sorted on the tuples themselves, with no key: a part numbers its events
        # one by one, so (time, part, index) tells any two apart and no Event is
        # compared; no key tuple nor key call per event (a 60 s 2x level sorts two
        # million, here and in the queue's forked checker: the key was 40% of it).
        try:
            return sorted(tagged())
        except TypeError:  # two events of a part with one index: as recorded (stable)
            return sorted(tagged(), key=lambda t: (t[0], t[1], t[2]))

    @property  # type: ignore[override]
    def timeline(self) -> list[tuple[float, str, str]]:
        rows = list(self._own_timeline)
        for name, part in self.parts.items():
            rows += [(t, kind, f"{name}: {detail}") for t, kind, detail in part.timeline]
        return sorted(rows, key=lambda r: r[0])

    @timeline.setter
    def timeline(self, rows: list[tuple[float, str, str]]) -> None:
        self._own_timeline = rows

    def record(self, event: dict[str, Any]) -> None:
        """The harness's callback (its nemesis's events): the capstone's own."""
        self._own.append(
            Event(
                type=event["type"], process=event["process"], f=event["f"],
                value=event["value"], time_ms=float(event["time_ms"]), index=len(self._own),
                extra=dict(event.get("extra") or {}),
            )
        )  # fmt: skip

    def add_to_timeline(self, at_ms: float, kind: str, detail: str = "") -> None:
        self._own_timeline.append((at_ms, kind, detail))  # `timeline` is a merged copy

    def note(self, kind: str, detail: str = "") -> None:
        now_ms = self.rt.now_ms
        self._own_timeline.append((now_ms, kind, detail))
        self.mark(kind, detail)

    def mark(self, kind: str, detail: str = "") -> None:
        """A note in the history only (the timeline already shows chapter 6's spike)."""
        self._own.append(Event("info", "nemesis", kind, detail, self.rt.now_ms, len(self._own)))

    def part_history(self, name: str, merged: list[Event] | None = None) -> list[Event]:
        """What part `name`'s checkers read: its events (from `merged`, a history
        this deployment wrote, or its own) with the capstone's, re-indexed."""
        # The pipeline's parts also read what of the other's events is theirs
        # (pipeline.VIEWS: chapter 4 the settlements, chapter 5 the reads).
        other, view = VIEWS.get(name, ("", None))
        if other not in self.parts:
            view = None
        if merged is None:
            if self._merged is None or self._merged[0] != self._history_key():
                return self._part_history_unmerged(name, other, view)
            merged = self.history
        # One pass, each event's `extra` copied once (a rehearsal level's queue part
        # is nearly the whole history: 635,000 events in 20 simulated s).
        out: list[Event] = []
        for e in merged:
            part = e.extra.get("part", "")
            if part and part != name:
                if part != other or view is None:
                    continue
                seen = view(e)
                if seen is None:
                    continue
                e = seen
            out.append(_taken_apart(e, len(out)))
        return out

    def _part_history_unmerged(self, name: str, other: str, view: View | None) -> list[Event]:
        """`part_history(name)` without the merged history: the same events, made
        from the parts' own, in the merged order. A forked checker of one part
        need not merge the whole history first (a 60 s 2x level: two million
        events, 7 s of CPU), nor read the one its parent merges meanwhile."""
        out: list[Event] = []
        for i, (_, _, _, e, part) in enumerate(self._in_order()):
            if part and part != name:
                if part != other or view is None:
                    continue
                seen = view(_merged_event(e, i, part))
                if seen is not None:
                    out.append(_taken_apart(seen, len(out)))
                continue
            # What merging it, then taking it apart, would give.
            extra = e.extra
            if "part" in extra or "pid" in extra:
                mine = dict(extra)
                mine.pop("part", None)
                pid = mine.pop("pid", e.process)
                mine["line"] = i + 1
            else:  # (nearly every event: no copy to take keys out of)
                mine, pid = {**extra, "line": i + 1}, e.process
            process = e.process if part and isinstance(e.process, int) else pid
            out.append(Event(e.type, process, e.f, e.value, e.time_ms, len(out), mine))
        return out

    # -- running: every part ----------------------------------------------------------
    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        rate = self.options.extra.get("steady_tps")  # `--rate`, or a real backend's default
        for part in self.parts.values():
            if rate is not None:
                _give_rate(part, float(rate))
            part.start_traffic(start_ms, end_ms, profile)

    def finish(self, at_ms: float) -> float:
        self.end_ms = max(part.finish(at_ms) for part in self.parts.values())
        return self.end_ms

    def final_reads_done(self) -> bool:
        return all(part.final_reads_done() for part in self.parts.values())

    # -- judging: every checker of every chapter -----------------------------------------
    def run_checks(self, history: list[Event] | None = None) -> dict[str, Verdict]:
        """Every check of the night: the night's own on the whole history, then each
        part's on its part of it. A part's checkers run one after the other in one
        job (they pair its events once); on a long history the jobs run side by
        side in forked processes (checks.parallel), with the same verdicts."""
        return self.checks_begun(history)()

    def checks_begun(
        self, history: list[Event] | None = None, *, forked: Collection[str] | None = None
    ) -> Callable[[], dict[str, Verdict]]:
        """`run_checks` begun: its jobs are forked now (on a long history); the
        function returned waits for them and gives the verdicts. In between the
        caller may work out figures of its own (the rehearsal's links) while the
        checkers run.

        `forked`: only these jobs (parts by name, "" the night's own) go to
        forked processes, the others run here when the verdicts are asked for
        (None: every job forked). Every process that reads a history its parent
        built copies the pages it reads (copy-on-write: each reference counted
        is a write), so on a heap of gigabytes a fork costs as much CPU as its
        checker: one forked job beside this process copies each page once,
        three copy it three times (`rehearsal._level`)."""
        from checks.parallel import PendingChecks, forks, start_checks

        jobs: dict[str, Callable[[], dict[str, Verdict]]] = {
            "": partial(self._own_verdicts, history)
        }
        for name in self.parts:
            jobs[name] = partial(self._part_verdicts, name, history)
        here: dict[str, Callable[[], dict[str, Verdict]]] = {}
        if forked is None:
            merged = self.history if history is None else history
            pending = start_checks(jobs, len(merged))
        else:
            # Forked before the history is merged here: a forked part's checkers make
            # their part's history from the parts' own (`part_history`) while this
            # process merges the whole, for its own jobs and the caller's figures.
            events = sum(self._history_key()) if history is None else len(history)
            parallel = forks(events, len(jobs))
            away = {n: job for n, job in jobs.items() if parallel and n in forked}
            here = {n: job for n, job in jobs.items() if n not in away}
            pending = PendingChecks(away, parallel)

        def verdicts() -> dict[str, Verdict]:
            out: dict[str, Verdict] = {}
            try:
                for job in here.values():
                    out |= job()
            except BaseException:
                pending.cancel()  # a checker raised: the forked ones' verdicts no longer matter
                raise
            for part in pending.wait().values():
                out |= part
            return {name: out[name] for name in self.checks if name in out}

        return verdicts

    def _own_verdicts(self, history: list[Event] | None) -> dict[str, Verdict]:
        merged = self.history if history is None else history
        with paired_once():
            own = OWN_CHECKS | self.whole_checks
            return {check: fn(merged) for check, fn in own.items() if check in self.checks}

    def _part_verdicts(self, name: str, history: list[Event] | None) -> dict[str, Verdict]:
        with paired_once():  # the part's checkers, one after the other, pair its events once
            events = self.part_history(name, history)
            part = self.parts[name]
            return {self.check_name(name, check): fn(events) for check, fn in part.checks.items()}

    def check_name(self, part: str, check: str) -> str:
        """Part `part`'s check `check` on the night: `chapter:check`; chapter 6's own
        system's as `ch6:core-check` (the `ch6:` names judge the pipeline's door)."""
        own = CORE_PREFIX if part == "degrade" else ""
        return f"{self.chapter_of[part]}:{own}{check}"

    def expectations(self, scenario: str | None = None) -> dict[str, Expectation]:
        out: dict[str, Expectation] = super().expectations(scenario)
        for name, part in self.parts.items():
            out |= {self.check_name(name, c): e for c, e in part.expectations().items()}
        return out

    # -- on a real backend ---------------------------------------------------------------
    @property
    def local_nodes(self) -> list[str]:
        """Nodes a part hosts in the harness's process (chapter 5's producers and
        consumers record history)."""
        return [n for part in self.parts.values() for n in getattr(part, "local_nodes", ())]

    @property
    def recorders(self) -> list[Deployment]:
        """The parts, whose `record` their nodes capture (chapter 6's sidecars): on a
        real backend each call comes back through this deployment's `record`, as
        the capstone's own event, which every part's checkers read."""
        return list(self.parts.values())

    # -- figures ----------------------------------------------------------------------
    @property
    def responses(self) -> list[dict[str, Any]]:
        return [r for part in self.parts.values() for r in getattr(part, "responses", [])]

    @property
    def traffic_window(self) -> tuple[float, float]:
        windows = [getattr(p, "traffic_window", (0.0, 0.0)) for p in self.parts.values()]
        windows = [w for w in windows if w[1] > w[0]]
        if not windows:
            return (0.0, 0.0)
        return (min(a for a, _ in windows), max(b for _, b in windows))

    def figures(self) -> dict[str, Any]:
        """The night in numbers: per part, the city lost, the lagging group."""
        from chapters.metrics import ok_latencies_ms, summarize

        parts: dict[str, Any] = {}
        summaries: dict[str, dict[str, Any]] = {}
        ok_ms: list[float] = []  # the rows' acknowledged payments: the headline's latency
        for name, part in self.parts.items():
            if isinstance(part, PipelineQueue):
                continue  # the pipeline's queue serves the cells' payments: its own line
            s = summaries[name] = summarize(part)
            ok_ms.extend(ok_latencies_ms(part))
            parts[name] = {
                "chapter": self.chapter_of[name],
                "title": part.stage.title,
                "payments": s["payments"],
                "ok": s["ok"],
                "goodput_tps": s["goodput_tps"],
                "peak_offered_tps": s["peak_offered_tps"],
                "payment_p99_ms": s["payment_p99_ms"],
                "timeouts": s["timeouts"],
            }
        out: dict[str, Any] = {"parts": parts, "midnight_ms": round(self.midnight_ms, 3)}
        out |= self._headline_counts(summaries)
        out |= self._headline_latency(sorted(ok_ms), out)
        out |= self._headline_series()
        queue = self.parts.get("mq")
        if isinstance(queue, PipelineQueue):
            out["pipeline"] = pipeline_figures(queue)
            isolation = self._isolation_details("mq")
            if isolation:
                out["pipeline"].setdefault("load_test", {}).update(isolation)
        if self.lost is not None:
            at_ms, city = self.lost
            out["city_lost"] = {
                "city": city,
                "at_ms": round(at_ms, 3),
                "after_midnight_ms": round(at_ms - self.midnight_ms, 3),
                **self._reroute(at_ms),
                "cells_recovered_after_ms": self._cells_recovered_after_ms(at_ms),
                "gzone_lost": city == DEFAULT_LOST_CITY,
            }
        if self.stalls:
            production, *shadow = (asdict(s) for s in self.stalls.values())
            out["consumer_lag"] = production | ({"shadow": shadow[0]} if shadow else {})
        moves = handover_figures(self._own)
        if moves:
            out["elastic"] = {"cell": ELASTIC_CELL, "moves": moves}
        isolation = self._isolation_details("rehearsal")
        if isolation:
            out["load_test"] = isolation
        return out

    # --8<-- [start:headline-counts]
    def _headline_counts(self, summaries: dict[str, dict[str, Any]]) -> dict[str, object]:
        """The headline's counts as the sums of the night table's rows: each system's
        production payments in its own traffic window (the merged history's window
        is the longest part's, and held the cells' final-phase retries as payments),
        and what became of the timeouts, system by system: a system's final phase
        asks again about its clients' unanswered payments (chapter 4's retry each by
        id, then look up by id what the retry did not settle; chapter 7's own system
        only retries), and a timeout found applied is acknowledged late, which is
        why a ledger check's acknowledged count is the row's ok plus those. A system
        whose final phase asked about none of its timeouts (its clients not asking
        again) leaves them unknown to their users."""
        payments = sum(s["payments"] for s in summaries.values())
        ok = sum(s["ok"] for s in summaries.values())
        errors: Counter[str] = Counter()
        for s in summaries.values():
            errors.update(s["errors"])
        start_ms, end_ms = self.traffic_window
        window_s = max(end_ms - start_ms, 1.0) / 1000.0
        systems: list[SystemTimeouts] = []
        fates = Counter[str]()
        for name, s in summaries.items():
            if not s["timeouts"]:
                continue
            part = self.parts[name]
            found = timeout_fates(part.history, getattr(part, "traffic_window", (0, 0)))
            # Asked: the final phase retried some (`asked`), or a lookup settled some.
            asked = bool(s["settled"]["asked"] or found["applied"] or found["not_applied"])
            if asked:
                fates.update(found)
            plans = getattr(part, "plans", {}).values()
            systems.append(
                {
                    "chapter": self.chapter_of[name],
                    "timeouts": s["timeouts"],
                    "ok": s["ok"],
                    "asked": asked,
                    "lookups": any(plan.final_lookups for plan in plans),
                    "applied": found["applied"] if asked else 0,
                    "not_applied": found["not_applied"] if asked else 0,
                    "unknown": found["unknown"] if asked else s["timeouts"],
                }
            )
        return {
            "payments": payments,
            "ok": ok,
            "goodput_tps": round(ok / window_s, 2),
            "offered_tps": round(payments / window_s, 2),
            "timeouts": sum(s["timeouts"] for s in summaries.values()),
            "errors": dict(errors.most_common()),
            "error_rate": round(sum(errors.values()) / payments, 4) if payments else 0.0,
            "settled": {
                "applied": fates["applied"],
                "not_applied": fates["not_applied"],
                "unknown": fates["unknown"],
                "asked_by": [t["chapter"] for t in systems if t["asked"]],
                "not_asked": sum(t["timeouts"] for t in systems if not t["asked"]),
                "not_asked_by": [t["chapter"] for t in systems if not t["asked"]],
                "systems": systems,
            },
        }

    # --8<-- [end:headline-counts]

    def _headline_latency(
        self, ok_ms: list[float], counts: Mapping[str, float]
    ) -> dict[str, object]:
        """The headline's per-payment latency over exactly the payments it counts as
        acknowledged in time (the night table's ok, summed: `ok_ms`), not over the
        merged history's, whose window is the longest system's and held other
        systems' payments outside their own windows (a trial's p99 of 4,041 ms came
        from chapter 7's own system's late oks); and the real rates of the headline's
        own simulated ones (at the night's scale, as the headline prints them)."""
        from chapters.metrics import percentile

        p50, p99, p999 = (round(percentile(ok_ms, p), 3) for p in (50, 99, 99.9))
        return {
            "payment_p50_ms": p50,
            "payment_p99_ms": p99,
            "payment_p999_ms": p999,
            "ok_p99_ms": p99,
            "offered_real_tps": round(counts["offered_tps"] / self.scale),
            "goodput_real_tps": round(counts["goodput_tps"] / self.scale),
        }

    def _headline_series(self) -> dict[str, object]:
        """The over-time table and the per-reply percentiles over the payments the
        headline counts: each system's (the night table's rows) in its own traffic
        window, and the replies its clients got in that window (up to a deadline
        after it). The merged history's window is the longest system's (chapter 6's
        calm after the spike): over it the pipeline's final-phase retries counted
        as payments and their replies as the night's (seed 1: 304 payments/s
        acknowledged 9 s in, 34 offered; a reply p99 of 3,093 ms there)."""
        from chapters.metrics import _series, _window, _window_transfers, percentile

        # The queue part serves the cells' payments: its clients are the cells part's.
        parts = [p for p in self.parts.values() if not isinstance(p, PipelineQueue)]
        ops: list[tuple[Event, Event | None]] = []
        for part in parts:
            ops += _window_transfers(list(part.history), *_window(part))
        replies = [
            r for part in parts for r in getattr(part, "responses", [])
            if _window(part)[0] <= r["time_ms"] < _window(part)[1] + part.deadline_ms
        ]  # fmt: skip
        start_ms, end_ms = self.traffic_window
        series = _series(sorted(ops, key=lambda op: op[0].time_ms), replies, start_ms, end_ms)
        latencies = sorted(float(r["latency_ms"]) for r in replies)
        return {
            "series": series,
            "peak_offered_tps": max(series["offered_tps"], default=0.0),
            "replies": len(latencies),
            **{key: round(percentile(latencies, p), 3)
               for key, p in (("p50_ms", 50), ("p99_ms", 99), ("p999_ms", 99.9))},
        }  # fmt: skip

    def on_routing(self, event: TraceEvent) -> None:
        """Telemetry: a controller declaring a cell dead, a gateway adopting new rules,
        the elastic cell's handovers (into the history: the one-owner check reads them)."""
        if event.kind in HANDOVER_EVENTS:
            value = {**event.fields, "node": event.node}
            self._own.append(
                Event("info", "nemesis", event.kind, value, event.time_ms, len(self._own))
            )
        if event.kind in ("cell-dead", "rules-adopted"):
            version = int(event.fields.get("version", 0))
            self.routing_events.append((event.time_ms, event.kind, event.node, version))

    def _reroute(self, at_ms: float) -> dict[str, float | None]:
        """The failover in steps, from the loss: detected (a controller's suspicion
        ran out), rerouted (every surviving gateway holds the new rules)."""
        after = [e for e in self.routing_events if e[0] >= at_ms]
        dead = [t for t, kind, _, _ in after if kind == "cell-dead"]
        if not dead:
            return {"detected_after_ms": None, "rerouted_after_ms": None, "routing_ms": None}
        # The first rules written after the loss, as the surviving gateways adopt them.
        city = self.lost[1] if self.lost else ""
        adopted = [
            (t, v) for t, kind, node, v in after
            if kind == "rules-adopted" and t >= dead[0] and self.topology.city_of(node) != city
        ]  # fmt: skip
        first = adopted[0][1] if adopted else None
        done = max((t for t, v in adopted if v == first), default=None)
        return {
            "detected_after_ms": round(dead[0] - at_ms, 3),
            "rerouted_after_ms": None if done is None else round(done - at_ms, 3),
            "routing_ms": None if done is None else round(done - dead[0], 3),
        }

    def _cells_recovered_after_ms(self, at_ms: float) -> float | None:
        """When the lost city's uid range paid again (chapter 4's own note)."""
        for t, kind, _ in self.parts["cells"].timeline if "cells" in self.parts else ():
            if kind == "recovered" and t >= at_ms:
                return round(t - at_ms, 3)
        return None

    def _isolation_details(self, name: str) -> dict[str, object]:
        """Part `name`'s load test in figures (chapter 7's own system, or the pipeline:
        its spans in the queue part, its tagged payments the cells' clients'); the
        violations once the run is over (the live view asks every second, and the
        checker reads every span so far)."""
        part = self.parts.get(name)
        if part is None or "isolation" not in part.checks:
            return {}
        if self.rt.now_ms < self.end_ms:
            history = part.history
            clients = self.parts["cells"].history if name == "mq" else history
            return {
                "load_test_payments": sum(
                    1 for e in clients if e.f == LOAD_TEST_TRANSFER and e.type == "invoke"
                ),
                "tagged_spans": sum(
                    1 for e in history if e.f == "span" and e.value.get("mark") == "T"
                ),
                "violations": None,  # judged at the end
            }
        history = self.part_history(name) if name in VIEWS else part.history
        details = dict(part.checks["isolation"](history).details)
        return {k: details[k] for k in ("load_test_payments", "tagged_spans", "violations")}


def timeout_fates(history: list[Event], window: tuple[float, float]) -> Counter[str]:
    """What became of the payments of a part's traffic `window` that timed out (no
    answer by the deadline), by its final phase: a retry acknowledged or a lookup
    that found it applied (applied), a retry declined or a lookup that fenced it
    (not_applied), neither (unknown). From its clients' history: the last word on
    each id."""
    start_ms, end_ms = window
    fate: dict[str, str] = {}
    timed_out: set[str] = set()
    for op in pair_operations(history, only=("transfer", "lookup-transfer")):
        done = op.completion
        if op.f == "transfer" and isinstance(op.invoke.value, dict) and done is not None:
            pid = str(op.invoke.value["id"])
            if done.type == "info" and start_ms <= op.invoke.time_ms < end_ms:
                timed_out.add(pid)
            elif done.type != "info" and pid in timed_out:
                fate[pid] = "applied" if done.type == "ok" else "not_applied"
        elif op.f == "lookup-transfer" and done is not None and done.type == "ok":
            for pid, found in done.value.items():
                if found in (APPLIED, ABSENT) and pid in timed_out:
                    fate[str(pid)] = "applied" if found == APPLIED else "not_applied"
    out = Counter(fate.values())
    out["unknown"] = len(timed_out) - out["applied"] - out["not_applied"]
    return out


def _give_rate(part: Deployment, rate: float) -> None:
    """The night's steady rate is each part's, at most the share of the part's own
    capacity its chapter run alone is offered (the harness's cap on a real
    backend). Unpassed, every part ran at its simulator rate: on the process
    backend ~1,400 payments/s in all (chapter 4's part ~960/s) against the 60/s
    one chapter gets there, and the night collapsed under load."""
    capacity = getattr(part, "capacity_tps", None)
    if callable(capacity):
        rate = min(rate, STEADY_SHARE * float(capacity()))
    part.options = part.options.with_(extra={**part.options.extra, "steady_tps": rate})


def build_parts(
    rt: Runtime,
    dep: CapstoneDeployment,
    parts: dict[str, StageOptions],
    layouts: dict[str, Layout],
    *,
    door_before: str,
    build: Callable[[str, StageOptions], Deployment] | None = None,
) -> dict[str, set[str]]:
    """Build `parts` (name -> options, in order) into `dep`: each part's nodes hear
    only their own part's subscriptions (`_subscribe_scoped`), the queue is built on
    the cells' ledger groups, each part's roles and checks (`check_name`) join the
    deployment's, and chapter 6's checks at the pipeline's door are added just
    before part `door_before`'s. `build` builds a part other than the queue (the
    part's own stage by default). Returns each part's nodes."""
    nodes_of = {n: set(Topology.build(lay).nodes()) for n, lay in layouts.items()}
    everyone = set().union(*nodes_of.values())
    for name, opts in parts.items():
        undo = _subscribe_scoped(rt, nodes_of[name], everyone)
        try:
            if name == "mq":  # the pipeline's queue, on the cells' ledger groups
                part = PART_STAGES[name].build_on(rt, opts, dep.parts["cells"])
            elif build is not None:
                part = build(name, opts)
            else:
                part = PART_STAGES[name].build(rt, opts)
        finally:
            undo()
        dep.parts[name] = part
        dep.chapter_of[name] = PART_STAGES[name].id
        for role, ids in part.roles.items():
            dep.roles[role].extend(ids)
        if name == door_before:
            cells = dep.parts["cells"]
            assert isinstance(cells, PaxosDeployment)
            dep.whole_checks = door_checks(cells.capacity_tps, cells.deadline_ms)
            dep.checks |= dep.whole_checks
        for check in part.checks:
            dep.checks[dep.check_name(name, check)] = _unsplit(dep, name, check)
    return nodes_of


def _subscribe_scoped(rt: Runtime, nodes: set[str], others: set[str]) -> Callable[[], None]:
    """While a part builds, its telemetry subscribers see only its own nodes'
    events (and the runtime's, which name no part's node): chapter 4's notes of
    "who leads" must not pick up chapter 5's broker. Returns the undo."""
    telemetry = getattr(rt, "telemetry", None)
    if telemetry is None:
        return lambda: None
    plain = telemetry.subscribe

    def scoped(callback: Callable[[Any], None]) -> Callable[[], None]:
        def mine(event: Any) -> None:
            node = getattr(event, "node", "")
            if node in nodes or node not in others:
                callback(event)

        return plain(mine)  # type: ignore[no-any-return]

    telemetry.subscribe = scoped

    def undo() -> None:
        del telemetry.subscribe

    return undo


# -- the scenarios ------------------------------------------------------------------------
def _each(scenario: str) -> Callable[[Deployment], None]:
    def apply(dep: Deployment) -> None:
        assert isinstance(dep, CapstoneDeployment)
        for part in dep.parts.values():
            part.apply_scenario(scenario)
        dep.midnight_ms = dep.rt.now_ms + WARMUP_MS + SPIKE_AT_MS
        dep.end_ms = max(part.end_ms for part in dep.parts.values())

    return apply


# --8<-- [start:double11]
def _double11(dep: Deployment) -> None:
    """Every chapter's midnight spike; a city lost at the peak; settlement (and its
    shadow twin) stalls."""
    assert isinstance(dep, CapstoneDeployment)
    _each("double11")(dep)
    peak_ms = dep.midnight_ms + PEAK_AFTER_MIDNIGHT_MS
    # The spike the pipeline's door must carry, for chapter 6's SLO there (`door.py`):
    # `--duration-s` from midnight, as chapter 6 marks its own. The rush decays over
    # ~3 s simulated (5 minutes of the night): it is not over before the traffic is.
    spike_end_ms = dep.midnight_ms + dep.options.duration_s * 1000.0
    dep.rt.call_at(dep.midnight_ms, lambda: dep.mark("door:spike-start", "midnight"))
    dep.rt.call_at(spike_end_ms, lambda: dep.mark("door:spike-end", "midnight"))
    city = lost_city(dep.options)
    dep.rt.call_at(peak_ms, lambda: lose_city(dep, city))
    if dep.options.extra.get("elastic", True):
        home, buckets = elastic_range(dep, city)
        out_ms = max(dep.rt.now_ms, dep.midnight_ms - ELASTIC_BEFORE_MS)
        why = "the elastic cell for the peak"
        dep.rt.call_at(out_ms, lambda: _move(dep, buckets, ELASTIC_CELL, why))
        back_ms = peak_ms + ELASTIC_BACK_AFTER_MS
        dep.rt.call_at(back_ms, lambda: _move(dep, buckets, home, "the peak is over: back home"))
    lag_ms = float(dep.options.extra.get("lag_ms", LAG_MS))
    if lag_ms > 0 and "mq" in dep.parts:
        pause_ms = peak_ms + LAG_AFTER_PEAK_MS
        dep.rt.call_at(pause_ms, lambda: stall_lagging_group(dep, pause_ms + lag_ms))


# --8<-- [end:double11]


def elastic_range(dep: CapstoneDeployment, lost: str) -> tuple[str, tuple[int, ...]]:
    """The cell whose range the elastic cell borrows, and the buckets: the first half
    of the boot range of the first cell in the city neither lost nor hosting the
    elastic cell, so the move out and the move back are both between live cells,
    and the lost city's failover is measured on a range that was served there."""
    cells = dep.parts["cells"]
    assert isinstance(cells, PaxosDeployment)
    host = host_city_for(lost)
    home = next(c for c, city in cells.cell_city.items() if city not in (lost, host))
    owners = even_buckets(list(cells.cell_city)).buckets
    mine = [b for b, owner in enumerate(owners) if owner == home]
    return home, tuple(mine[: len(mine) // 2])


def _move(dep: CapstoneDeployment, buckets: tuple[int, ...], to_cell: str, why: str) -> None:
    """The operator's move: both failover controllers are told (each writes the
    same next rules version; whichever is alive gets it to the GZone)."""
    cells = dep.parts["cells"]
    dep.note("elastic-move", f"uid buckets {buckets[0]}-{buckets[-1]} -> {to_cell}")
    # On the simulator, as the controller itself; on a real backend the controllers
    # live in other processes, and a client of this process is the operator's console.
    console = next(
        (c for c in cells.roles["client"] if dep.rt.context(c) is not None),  # type: ignore[attr-defined]
        None,
    )
    for controller in cells.roles["controller"]:
        if dep.rt.status(controller) != "up":
            continue
        ctx = dep.rt.context(controller) or (  # type: ignore[attr-defined]
            dep.rt.context(console) if console is not None else None  # type: ignore[attr-defined]
        )
        if ctx is not None:
            ctx.send(controller, MoveRange(buckets, to_cell, why))


def lose_city(dep: CapstoneDeployment, city: str) -> None:
    """Every server of `city`, in every part, crashes at once."""
    dep.lost = (dep.rt.now_ms, city)
    dep.note("city-lost", f"{city}: every server of every system there")
    for name, part in dep.parts.items():
        clients = set(part.roles["client"])
        victims = [n for n in part.topology.nodes() if n not in clients]
        victims = [n for n in victims if part.topology.city_of(n) == city]
        if not victims:
            continue
        if name == "cells" and city != CELLS_LOST_CITY:
            part.lose_city(city)  # type: ignore[attr-defined]  # ch4 starts its recovery clock
        part.crash(victims, f"the city of {city} is lost")  # type: ignore[attr-defined]


@dataclass
class Stall:
    """One consumer group of the lag drill: who was paused, when, and its backlog."""

    group: str
    paused: list[str]
    paused_at_ms: float
    resumed_at_ms: float
    max_lag: int = 0  # messages: the group's lag on its topic and its retry topic
    drained_after_ms: float | None = None  # committed lag zero this long after resuming


def stall_lagging_group(dep: CapstoneDeployment, resume_ms: float) -> None:
    """Pause the lagging group's live members, and its shadow twin's (the load test's
    lane of the same group: a rehearsal that throttles a group throttles the one its
    tagged messages go to, so the load test sees the lag production sees); resume
    both at `resume_ms`; time each one's drain (`dep.stalls`)."""
    mq = dep.parts["mq"]
    assert isinstance(mq, MqDeployment)
    lanes = [(g, topic) for g, topic, twin in lanes_of(mq) if twin == LAGGING_GROUP]
    stalls = dep.stalls
    for group, _topic in lanes:
        members = [n for n in mq.consumers[group] if dep.rt.status(n) == "up"]
        for n in members:
            dep.rt.pause(n)  # type: ignore[attr-defined]
        stalls[group] = Stall(group, members, round(dep.rt.now_ms, 3), round(resume_ms, 3))
        dep.note("consumer-lag", f"{group} stalls: {', '.join(members) or 'no live member'}")

    def lag_now(group: str, topic: str) -> int | None:
        state = mq.broker_state()
        if state is None:
            return None
        return state.lag(group, topic) + state.lag(group, retry_topic(group))

    def poll(group: str, topic: str) -> None:
        lag = lag_now(group, topic)
        now_ms = dep.rt.now_ms
        mine = stalls[group]
        if lag is not None:
            mine.max_lag = max(mine.max_lag, lag)
        if now_ms >= resume_ms and lag == 0:
            drained_ms = now_ms - resume_ms
            mine.drained_after_ms = round(drained_ms, 3)
            dep.note("drained", f"{group} caught up {drained_ms:.0f} ms after resuming")
            return
        if now_ms < dep.end_ms:
            dep.rt.call_at(now_ms + LAG_POLL_MS, partial(poll, group, topic))

    def resume() -> None:
        for group, stall in stalls.items():
            for n in stall.paused:  # (a paused node's status is "paused", not "up")
                dep.rt.resume(n)  # type: ignore[attr-defined]
            dep.note("consumer-resume", f"{group} resumes with a backlog")

    dep.rt.call_at(resume_ms, resume)
    for group, topic in lanes:
        dep.rt.call_at(dep.rt.now_ms + LAG_POLL_MS, partial(poll, group, topic))


class CapstoneStage(Stage):
    id = "double11"
    title = "Double 11 night: chapters 4 to 7 together"
    aliases = ("capstone",)
    variants = {  # noqa: RUF012
        "all": "cells + Paxos ledger, the message queue, degrade controls, load test",
        "two-owners": "all, with a planted bug: the elastic cell's new owner serves the "
        "range before the old owner has released it",
        "naive-after": "all, with chapter 5's planted bug in the pipeline: the payment "
        "service transfers, then sends the event fire-and-forget",
    }
    default_variant = "all"
    default_scale = DEFAULT_SCALE
    default_scenario = "double11"
    settings = {  # noqa: RUF012
        "lost_city": Setting("the city lost at the peak", choices=CITY_NAMES),
        "load_test_share": Setting(
            "share of payments tagged as load test, through the pipeline's shadow lane "
            f"({LOAD_TEST_SHARE:g}; chapter 7's own system keeps its own share unless set)",
            float, low=0, high=1,
        ),
        "leak": Setting(
            "plant a pipeline node that drops the load-test tag",
            choices=LEAKS,
            plants=leak_breaks,
        ),
    }  # fmt: skip
    scenarios = {  # noqa: RUF012
        "double11": Scenario(
            "double11",
            "every chapter's midnight spike; a whole city lost at the peak (lost_city, "
            "hangzhou by default: the GZone's); settlement consumers and their shadow twins "
            "stalled after it; "
            "load-test traffic mixed in",
            _double11,
        ),
        "steady": Scenario("steady", "every chapter's steady load, no fault", _each("steady")),
    }
    # Each part brings its chapter's own; the capstone's own check fails on its planted bug.
    expected = {  # noqa: RUF012
        ("two-owners", "double11"): {
            "double11:one-owner": expect(
                False,
                "The new owner serves the range at once: at the peak, while the old "
                "owner still has payments of it in flight, two cells hold the range.",
            )
        },
        ("naive-after", "double11"): {
            "double11:pipeline": expect(
                False,
                "The city lost at the peak takes payment services that had transferred "
                "and not yet sent the event: users saw those payments paid, and no "
                "merchant is ever settled for them.",
                always=False,
            ),
            "ch5:settlement": expect(
                False, "Those payments' escrow stays full: never settled.", always=False
            ),
            "ch5:half-messages": expect(
                True, "No half message: the naive producer sends plain ones.", always=False
            ),
            "ch5:delivery": expect(
                False, "A payment with no event is a committed message never sent.", always=False
            ),
        },
    }

    def validate(self, options: StageOptions) -> None:
        super().validate(options)
        if options.shards or options.cells:
            raise StageError("the capstone runs each chapter at its own size: no --shards/--cells")
        if options.extra.get("handover", "drain") not in ("drain", "no-wait"):
            raise StageError("handover must be drain, or no-wait (the planted bug)")
        city = lost_city(options)
        if city not in CITY_NAMES:
            raise StageError(f"lost_city must be one of {', '.join(CITY_NAMES)}, not {city!r}")
        leak = str(options.extra.get("leak", ""))
        if leak and leak not in LEAKS:
            raise StageError(f"leak must be one of {', '.join(LEAKS)}, not {leak!r}")
        share = options.extra.get("load_test_share", LOAD_TEST_SHARE)
        if not isinstance(share, int | float) or not 0 <= share <= 1:
            raise StageError(f"load_test_share must be in [0, 1], not {share!r}")
        if leak and share == 0:
            raise StageError("a planted leak needs load-test traffic: load_test_share > 0")

    def part_options(self, options: StageOptions) -> dict[str, StageOptions]:
        """Each part's options: the capstone's seed, duration and scale (chapter 6
        keeps its own scale: its payment database is small on purpose)."""
        host = host_city_for(lost_city(options))
        extra = dict(options.extra)
        out: dict[str, StageOptions] = {}
        for name in PART_ORDER:
            stage = PART_STAGES[name]
            part_extra: dict[str, Any] = {"host_city": host}
            if name == "degrade":
                # Midnight at the same instant as the others; a shorter calm after it.
                after_ms = float(extra.get("after_ms", DEGRADE_AFTER_MS))
                part_extra |= {"before_ms": SPIKE_AT_MS, "after_ms": after_ms}
                if extra.get("control"):  # live changes (the TUI's keys): a control plane
                    part_extra["control"] = True
            if name == "cells" and options.variant == "two-owners":
                part_extra["handover"] = "no-wait"  # the planted bug
            elif name == "cells" and "handover" in extra:
                part_extra["handover"] = extra["handover"]
            if name == "rehearsal" and "load_test_share" in extra:
                part_extra["load_test_share"] = extra["load_test_share"]
            if name in ("cells", "mq"):  # the pipeline's load test, and its planted leak
                part_extra["load_test_share"] = extra.get("load_test_share", LOAD_TEST_SHARE)
                hop_part = "cells" if extra.get("leak") == "gateway" else "mq"
                if extra.get("leak") and name == hop_part:  # the part whose node drops it
                    part_extra["leak"] = extra["leak"]
            if name == "mq" and options.variant == "naive-after":  # the planted bug
                part_extra["producer_mode"] = "naive-after"
            scale = 0.0 if name == "degrade" else options.scale
            out[name] = stage.options(
                seed=options.seed, duration_s=options.duration_s, scale=scale, extra=part_extra
            )
        return out

    def topology(self, options: StageOptions) -> Topology:
        parts = self.part_options(options)
        return Topology.build(merge_layouts([part_layout(n, o) for n, o in parts.items()]))

    def build(self, rt: Runtime, options: StageOptions) -> Deployment:
        parts = self.part_options(options)
        layouts = {n: part_layout(n, o) for n, o in parts.items()}
        dep = CapstoneDeployment(
            self, rt, options, Topology.build(merge_layouts([*layouts.values()]))
        )
        # chapter 6's checks at the pipeline's door, ahead of chapter 6's own system's
        nodes_of = build_parts(rt, dep, parts, layouts, door_before="degrade")
        dep.checks |= OWN_CHECKS
        cells = dep.parts["cells"]
        rehearsal = dep.parts["rehearsal"]
        assert isinstance(rehearsal, NightRehearsal)
        rehearsal.pipeline = dep.parts["cells"]  # one kill switch for all tagged traffic
        queue = dep.parts["mq"]
        assert isinstance(queue, PipelineQueue)
        record_spans(rt, queue, nodes_of["cells"] | nodes_of["mq"])  # the pipeline's spans
        telemetry = getattr(rt, "telemetry", None)
        if telemetry is not None:
            telemetry.subscribe(dep.on_routing)
        dep.deadline_ms = cells.deadline_ms
        dep.scale = cells.scale
        return dep


def _unsplit(dep: CapstoneDeployment, name: str, check: str) -> Callable[[list[Event]], Verdict]:
    """One part's checker on a merged history (`run_checks` splits it once for all)."""
    return lambda history: dep.parts[name].checks[check](dep.part_history(name, history))


STAGE = CapstoneStage()


def _merged_event(e: Event, index: int, part: str) -> Event:
    """Part `part`'s event `e` at `index` of the merged history ("": the capstone's own)."""
    # Built field by field, not by `dataclasses.replace` (its look at the fields
    # each time): a rehearsal's level merges two million events (60 s at 2x).
    process = e.process
    if not part or not isinstance(process, int):
        return Event(e.type, process, e.f, e.value, e.time_ms, index, {**e.extra, "part": part})
    extra = {**e.extra, "part": part, "pid": process}
    return Event(e.type, f"{part}/{process}", e.f, e.value, e.time_ms, index, extra)


def _taken_apart(e: Event, index: int) -> Event:
    """A merged history's event `e` as its part's checkers read it, at
    `index`: its own process again, numbered anew; where a reader finds the event
    is its line in the whole run's history.jsonl (a witness says it)."""
    mine = dict(e.extra)
    mine.pop("part", None)
    process = mine.pop("pid", e.process)
    mine["line"] = e.index + 1
    return Event(e.type, process, e.f, e.value, e.time_ms, index, mine)
