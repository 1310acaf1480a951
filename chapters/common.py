"""What chapters 1-3 share: the payment workload, the final phase, the checks.

Every stage of the payment system is driven the same way, so their numbers
compare: the same users and Zipf merchants (`reference.traffic`), the same
deadline and retry policy, the same final phase (heal, restart, let recovery
run, read every balance) and the same checkers (`checks.bank`,
`checks.transfers`). A chapter subclass says only what differs: its nodes, how
a client reaches them, and what a crash or a partition hits.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from chapters.stage import Deployment, Expectation, Runtime, Stage, StageError, StageOptions
from checks.history import Event
from checks.verdict import Validity
from reference.clients import ClientConfig, ClientPlan, ClosedLoop, Payment, PaymentClient
from reference.clients.node import Route
from reference.gateway.router import CellRouter
from reference.net.topology import Topology
from reference.node import NodeId
from reference.payment import merchant_account, user_account
from reference.sim.rng import stream
from reference.sqlstore import ServiceTime
from reference.traffic.plan import Timeline, Traffic
from reference.traffic.population import Population
from reference.traffic.shape import HOUR_S, PEAK_2019_PER_S, DayShape

__all__ = [
    "DEADLINE_MS",
    "SERVICE",
    "PaymentDeployment",
    "store_capacity_tps",
]

DEADLINE_MS = 1_000.0  # a payment the user waited longer than this for has failed them
ATTEMPT_TIMEOUT_MS = 400.0
ATTEMPTS_MAX = 3
USERS = 1_000
MERCHANTS = 20
OPENING_BALANCE_CENTS = 200_000  # each user starts with 2,000 yuan
STEADY_SHARE = 0.6  # steady traffic: this share of the stage's capacity
SPIKE_SPEEDUP = 100.0  # double11: day seconds per simulated second
SPIKE_AT_MS = 1_000.0  # double11: midnight, this long after traffic starts
RECOVERY_MS = 1_500.0  # final phase: time for TCC recovery / replication to settle
FINAL_READ_WINDOW_MS = 3_000.0
RECONCILE_MARGIN_MS = 100.0  # the reader also waits for its own reconciliation to end
SATURATE_CONCURRENCY = 8  # closed loop: outstanding payments per store
PAYOUT_CHUNK_CENTS = 100_000  # rolling traffic: merchants pay back in chunks of at most 1,000 yuan

# One service-time model for every store: pay = 6 statements -> 4 ms busy
# plus a 0.5 ms log sync, about 220 payments per second per store.
SERVICE = ServiceTime(txn_ms=1.0, statement_ms=0.5)
PAY_STATEMENTS = 6
SYNC_MS = 0.5


def store_capacity_tps(statements: int = PAY_STATEMENTS) -> float:
    """Payments per second one store sustains (one local transaction each)."""
    return SERVICE.capacity_tps(statements, SYNC_MS)


class PaymentDeployment(Deployment):
    """A payment stage on a runtime; chapters fill in the abstract hooks."""

    traced = False  # chapter 7: clients put a trace context (and its tag) on every payment

    def __init__(
        self, stage: Stage, rt: Runtime, options: StageOptions, topology: Topology
    ) -> None:
        super().__init__(stage, rt, options, topology)
        extra = dict(options.extra)
        self.population = Population(
            users=int(extra.get("users", USERS)),
            merchants=int(extra.get("merchants", MERCHANTS)),
            zipf_exponent=float(extra.get("zipf", 1.0)),
        )
        self.deadline_ms = DEADLINE_MS
        self.plans: dict[NodeId, ClientPlan] = {}
        self.responses: list[dict[str, Any]] = []  # every reply a client got, late ones too
        self.initial: dict[str, int] = {}
        self.crashed: set[NodeId] = set()
        self.traffic_window: tuple[float, float] = (0.0, 0.0)
        self.profile = "steady"
        # Rolling traffic (a live session's window after window, `tui.session`): each
        # window draws its own users, and merchants pay back what they took in, so
        # money circulates instead of draining the buyers. Off: a run's traffic, as ever.
        self.rolling = False
        self.traffic_round = 0  # windows planned so far
        self.settled_ms = 0.0  # rolling: merchants' takings are paid back up to here
        self.held_cents: dict[str, int] = {}  # rolling: balances the history acknowledges
        self.payouts_open: set[str] = set()  # rolling: payouts started, no definite end yet

    # -- what a chapter says --------------------------------------------------------
    @abstractmethod
    def capacity_tps(self) -> float:
        """The stage's payment capacity (an estimate from the service time), for sizing."""

    @abstractmethod
    def crash_victims(self) -> list[NodeId]:
        """What the crash scenario kills."""

    @abstractmethod
    def partition_groups(self) -> list[set[str]]:
        """What the partition scenario separates (node, cell or city names)."""

    def crash_plan(self) -> list[tuple[float, list[NodeId]]]:
        """(offset from the fault time, nodes) pairs: what crashes when."""
        return [(0.0, self.crash_victims())]

    def restart_after_ms(self) -> float | None:
        """How long crashed nodes stay down (None: until the final phase)."""
        return 1_000.0

    def payment_for(
        self, rng: random.Random, time_ms: float, uid: int, mid: int, amount_cents: int
    ) -> Payment:
        """The accounts one arrival pays between (chapter 3 uses per-cell merchants)."""
        return Payment(time_ms, user_account(uid), merchant_account(mid), amount_cents)

    def stores(self) -> list[NodeId]:
        return self.roles["shard"]

    # -- building helpers -------------------------------------------------------------
    def opening_balances(self) -> dict[str, int]:
        opening = int(self.options.extra.get("opening_cents", OPENING_BALANCE_CENTS))
        users = {user_account(u): opening for u in range(self.population.users)}
        return users | self.merchant_balances()

    def merchant_balances(self) -> dict[str, int]:
        return {merchant_account(m): 0 for m in range(self.population.merchants)}

    def record_init(self, balances: dict[str, int]) -> None:
        """The starting balances, as the ledger checker's f="init" operation."""
        self.initial = dict(balances)
        for kind in ("invoke", "ok"):
            value = None if kind == "invoke" else dict(balances)
            self.record(
                {"type": kind, "process": "setup", "f": "init", "value": value, "time_ms": 0.0}
            )

    def add_clients(
        self,
        client_ids: list[NodeId],
        route: Route,
        read_target: NodeId,
        rules: Callable[[], CellRouter] | None = None,
        read_interval_ms: float = 0.0,
        refund_ratio: float = 0.0,
    ) -> None:
        for i, cid in enumerate(client_ids):
            plan = ClientPlan(read_interval_ms=read_interval_ms, refund_ratio=refund_ratio)
            plan.final_payments_read = self.wants_payments_read()
            self.plans[cid] = plan
            config = ClientConfig(
                process_base=(i + 1) * 1_000_000,
                record=self.record,
                route=route,
                read_target=read_target,
                plan=plan,
                deadline_ms=DEADLINE_MS,
                attempt_timeout_ms=ATTEMPT_TIMEOUT_MS,
                attempts_max=ATTEMPTS_MAX,
                respond=self.responses.append,
                traced=self.traced,
            )

            def factory(_nid: str, config: ClientConfig = config) -> PaymentClient:
                # A fresh copy of the routing rules per incarnation: what a client
                # learns (RulesUpdate) lives in the client, as on a real phone.
                return PaymentClient(config if rules is None else replace(config, rules=rules()))

            self.rt.add_node(cid, factory)
            self.roles["client"].append(cid)

    def wants_payments_read(self) -> bool:
        return False

    # -- traffic ---------------------------------------------------------------------------
    def traffic(self, profile: str, start_ms: float) -> Traffic:
        """The arrivals of `profile`, from the traffic model, at this run's scale."""
        population = self.population
        if profile == "double11":
            # The real Double 11 shape (2019 peak, 100x the quiet level), sped up
            # so the midnight spike lands SPIKE_AT_MS into the traffic window.
            shape = DayShape.for_peak(PEAK_2019_PER_S)
            day_start_s = -(start_ms + SPIKE_AT_MS) / 1000.0 * SPIKE_SPEEDUP
            timeline = Timeline(day_start_s=day_start_s, speedup=SPIKE_SPEEDUP)
            return Traffic(shape, self.scale, timeline, population)
        # Steady: a flat evening at a fixed share of what this stage can serve.
        steady_tps = float(self.options.extra.get("steady_tps", STEADY_SHARE * self.capacity_tps()))
        shape = DayShape(
            baseline_per_s=steady_tps / self.scale, daily_amplitude=0.0, secondary_multiplier=0.0
        )
        return Traffic(shape, self.scale, Timeline(day_start_s=-2 * HOUR_S), population)

    def start_traffic(self, start_ms: float, end_ms: float, profile: str = "steady") -> None:
        if profile not in ("steady", "double11", "saturate"):
            raise ValueError(f"unknown traffic profile {profile!r}")
        self.profile = profile
        self.traffic_window = (start_ms, end_ms)
        clients = self.roles["client"]
        self.note("traffic", f"{profile} from {start_ms:.0f} to {end_ms:.0f} ms")
        if profile == "saturate":
            concurrency = max(1, SATURATE_CONCURRENCY * len(self.stores()) // len(clients))
            for cid in clients:
                loop = ClosedLoop(start_ms, end_ms, concurrency, self.make_payment)
                self.plans[cid].closed.append(loop)
        else:
            # Rolling windows draw fresh streams each: the same names would replay the
            # same users and times window after window.
            tag = f"/{self.traffic_round}" if self.rolling and self.traffic_round else ""
            traffic = self.traffic(profile, start_ms)
            for cid in clients:
                plan = self.plans[cid]
                plan.traffic_until_ms = end_ms
                arrivals = traffic.arrivals(
                    self.options.seed, start_ms, end_ms, name=f"traffic/{cid}{tag}",
                    fraction=1.0 / len(clients),
                )  # fmt: skip
                mix = stream(self.options.seed, f"mix/{cid}{tag}")
                plan.arrivals.extend(self.payment_for(mix, *a) for a in arrivals)
            if self.rolling:
                self.pay_back(start_ms, end_ms)
        self.traffic_round += 1

    # --8<-- [start:pay-back]
    def takings(self, since_ms: float) -> dict[str, int]:
        """How much each account's balance moved, by clients' transfers since `since_ms`.

        Money in counts when a transfer is acknowledged. Money out of an
        account that pays back (`pays_back`: a payout, or a refund) counts
        when the transfer starts: in flight, or with no answer, it may have
        moved already, and a merchant's account may overdraw (nothing in the
        ledger declines one payout too many), so what is planned must stay
        within what is surely there. A definite failure gives it back; each
        payout counts once, however often it is asked again (`payouts_open`).

        Merchant accounts of one name only ("m3"): a chapter that splits a
        merchant by cell or group ("m3@cell-a") routes payments by the buyer,
        and a merchant is not a buyer it can route. Load-test transfers
        (chapter 7) move shadow money and are not counted.
        """
        window: list[Event] = []
        for e in reversed(self.history):  # newest first: stop at the last settlement
            if e.time_ms < since_ms:
                break
            if e.f == "transfer" and isinstance(e.value, dict):
                window.append(e)
        net: dict[str, int] = {}
        for e in reversed(window):  # in time order: a payout starts before it ends
            value = e.value
            cents = int(value.get("amount_cents", 0))
            source, sink = str(value.get("from")), str(value.get("to"))
            out = source in self.initial and self.pays_back(source)
            key = str(value.get("id"))
            if e.type == "invoke":
                if out and key not in self.payouts_open:
                    self.payouts_open.add(key)
                    net[source] = net.get(source, 0) - cents
            elif e.type == "ok":
                if sink in self.initial:
                    net[sink] = net.get(sink, 0) + cents
                if out:
                    self.payouts_open.discard(key)
                elif source in self.initial:
                    net[source] = net.get(source, 0) - cents
            elif e.type == "fail" and out and key in self.payouts_open:
                self.payouts_open.discard(key)  # a definite no: the money stayed
                net[source] = net.get(source, 0) + cents
        return net

    def pay_back(self, start_ms: float, end_ms: float) -> int:
        """Merchants pay what they hold back to users, in chunks of at most
        PAYOUT_CHUNK_CENTS over [start_ms, end_ms) (a supplier's or a cashback's
        payment), each to the poorer of two users drawn at random (so few are
        left with nothing to pay with); the number of payouts planned.

        What a merchant holds is what the history acknowledges (takings less
        refunds and payouts started) less the payouts still planned, so a
        payout that never ran (a refund took its turn) is planned again and
        none is planned twice (`takings`): what buyers spend comes back to
        buyers, no merchant pays out money it does not hold, and steady
        traffic runs for hours on the opening balances.
        """
        held = self.held_cents or dict(self.initial)
        self.held_cents = held
        for account, cents in self.takings(self.settled_ms).items():
            held[account] += cents
        self.settled_ms = self.rt.now_ms
        owed = {m: cents for m, cents in held.items() if self.pays_back(m)}
        for plan in self.plans.values():
            for p in plan.arrivals:
                if p.buyer in owed:
                    owed[p.buyer] -= p.amount_cents
        rng = stream(self.options.seed, f"payouts/{self.traffic_round}")
        clients = self.roles["client"]
        planned: dict[NodeId, list[Payment]] = {cid: [] for cid in clients}
        for merchant in sorted(owed):
            while owed[merchant] > 0:
                amount_cents = min(owed[merchant], PAYOUT_CHUNK_CENTS)
                owed[merchant] -= amount_cents
                pair = (self.population.user(rng), self.population.user(rng))
                payee = min((user_account(u) for u in pair), key=lambda a: held.get(a, 0))
                payout = Payment(rng.uniform(start_ms, end_ms), merchant, payee, amount_cents)
                planned[clients[rng.randrange(len(clients))]].append(payout)
        for cid, payouts in planned.items():
            if payouts:  # a client's arrivals stay in time order
                plan = self.plans[cid]
                merged = sorted([*plan.arrivals, *payouts], key=lambda p: p.time_ms)
                plan.arrivals.clear()
                plan.arrivals.extend(merged)
        return sum(len(p) for p in planned.values())

    # --8<-- [end:pay-back]

    def pays_back(self, account: str) -> bool:
        """Does `account` pay what it holds back to users in rolling traffic? A
        merchant's account of one name (`takings`); a chapter whose merchants hold
        their money elsewhere says where (chapter 5: their settled accounts)."""
        return _plain_merchant(account)

    def make_payment(self, rng: random.Random, now_ms: float, slot: int) -> Payment:
        """A closed-loop payment for `slot` (chapter 3 pins slots to cells)."""
        pop = self.population
        uid, mid, amount_cents = pop.user(rng), pop.merchant(rng), pop.amount_cents(rng)
        return self.payment_for(rng, now_ms, uid, mid, amount_cents)

    # -- faults ------------------------------------------------------------------------------
    def crash(self, nodes: list[NodeId], why: str = "") -> None:
        for n in nodes:
            if self.rt.status(n) != "crashed":
                self.rt.crash(n)
                self.crashed.add(n)
        self.note("crash", f"{', '.join(nodes)}{': ' + why if why else ''}")

    def restart(self, nodes: list[NodeId]) -> None:
        back = [n for n in nodes if self.rt.status(n) == "crashed"]
        for n in back:
            self.rt.restart(n)
            self.crashed.discard(n)
        if back:
            self.note("restart", ", ".join(back))

    def partition(self, groups: list[set[str]]) -> None:
        self.rt.net.partition(groups)
        self.note("partition", " | ".join(",".join(sorted(g)) for g in groups))

    def heal(self) -> None:
        self.rt.net.heal()
        self.note("heal")

    # -- the final phase -----------------------------------------------------------------------
    def finish(self, at_ms: float) -> float:
        """Heal and restart at `at_ms`, let recovery run, then read everything."""
        reconcile_at_ms = at_ms + RECOVERY_MS
        read_at_ms = reconcile_at_ms + RECONCILE_MARGIN_MS

        def final_phase() -> None:
            self.note("final-phase", "heal, restart what is down, then read every balance")
            self.rt.net.heal()
            # Whatever is down, whoever crashed it (a scenario or a harness's nemesis).
            servers = [n for role, ids in self.roles.items() if role != "cell" for n in ids]
            down = {n for n in servers if self.rt.status(n) == "crashed"}
            self.restart(sorted(down | self.crashed))
            for plan in self.plans.values():
                plan.reconcile_at_ms = reconcile_at_ms  # ask again about unknown payments
            # One client takes the final reads, once every client has its answers:
            # the ledger checker needs the final read to follow every transfer.
            reader = self.plans[self.roles["client"][0]]
            reader.final_read_gate = lambda: all(p.reconciled for p in self.plans.values())
            reader.final_read_at_ms = read_at_ms

        self.rt.call_at(at_ms, final_phase)
        self.end_ms = read_at_ms + FINAL_READ_WINDOW_MS
        return self.end_ms

    def final_reads_done(self) -> bool:
        """True once the final reads the checkers need are in the history."""
        wanted = {"read", "read-payments"} if self.wants_payments_read() else {"read"}
        done = {e.f for e in self.history if e.type == "ok" and e.extra.get("final")}
        return wanted <= done

    # -- checks ------------------------------------------------------------------------------
    def standard_checks(self) -> None:
        """Bank (every full read adds up) and ledger (the final read is the opening
        balances plus every acknowledged payment, exactly once).

        The ledger checker holds only the final read: holding every mid-run
        read in real time means trying every subset of the payments in flight
        around it, which a crash makes exponential.
        """
        from checks.bank import check_bank
        from checks.transfers import check_ledger

        total = sum(self.initial.values())
        accounts = sorted(self.initial)

        def bank(history: list[Event]) -> Any:
            return check_bank(history, total=total, accounts=accounts)

        def ledger(history: list[Event]) -> Any:
            return check_ledger(history, initial=self.initial, realtime=False)

        self.checks["bank"] = bank
        self.checks["ledger"] = ledger


def _plain_merchant(account: str) -> bool:
    """A merchant account of one name ("m3"), not one split by cell or group ("m3@c1")."""
    return account.startswith("m") and account[1:].isdigit()


def expect(valid: Validity, why: str, always: bool = True) -> Expectation:
    return Expectation(valid, why, always)


def planted_mutations(options: StageOptions, table: Mapping[str, str]) -> frozenset[str]:
    """Bug-zoo mutations to plant (extra "mutations": "a,b" or a list), each one of `table`'s."""
    raw = options.extra.get("mutations", ())
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    chosen = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(chosen - table.keys())
    if unknown:
        raise StageError(f"unknown mutation {', '.join(unknown)} (known: {', '.join(table)})")
    return chosen
