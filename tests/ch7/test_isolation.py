"""Chapter 7: the trace context, shadow data and the isolation checker.

The checker is trusted only because it catches the planted leak (a gateway
that drops the tag) and each of its rules on a history that breaks it.
"""

from __future__ import annotations

from typing import Any

import pytest

from chapters.run import simulate
from checks.history import Event
from checks.isolation import check_isolation
from reference.codec import decode, encode
from reference.payment.messages import PayRequest, ReadBalances
from reference.tcc.messages import TccTry
from reference.tracing import (
    ExternalGuard,
    LoadTestPolicy,
    new_trace,
    shadow_account,
    shadow_request,
    written_accounts,
)

TAGGED = new_trace("p1", "r1", load_test=True)
LIVE = new_trace("p2", "r2", load_test=False)


def test_trace_context_round_trips_and_defaults_keep_old_messages() -> None:
    for msg in (
        PayRequest("r", "p", "u1", "m2", 5, 1.0, TAGGED),
        PayRequest("r", "p", "u1", "m2", 5, 1.0),
        TccTry("r", "x", "debit", "debit", "u1", 5, 1.0, TAGGED.child("s2")),
        ReadBalances("r", None, 0.0, LIVE),
    ):
        assert decode(encode(msg)) == msg
    assert PayRequest("r", "p", "u1", "m2", 5, 1.0).trace is None
    child = TAGGED.child("s2")
    assert (child.trace_id, child.parent_span_id, child.mark) == ("p1", "r1", "T")


def test_the_data_layer_sends_tagged_requests_to_shadow_accounts() -> None:
    tagged = shadow_request(PayRequest("r", "p", "u1", "m2", 5, 1.0, TAGGED))
    assert (tagged.buyer, tagged.merchant) == ("pt_u1", "pt_m2")
    live = PayRequest("r", "p", "u1", "m2", 5, 1.0, LIVE)
    assert shadow_request(live) is live
    read = shadow_request(ReadBalances("r", ("u1",), 0.0, TAGGED))
    assert read.accounts == ("pt_u1",)
    writes = [("UPDATE accounts SET b = ? WHERE id = ?", (5, "pt_u1")), ("INSERT", ("p-1", "m2"))]
    assert written_accounts(writes) == ("m2", "pt_u1")
    with pytest.raises(AssertionError):
        shadow_account("pt_u1")


def test_allow_list_kill_switch_and_external_guard() -> None:
    policy = LoadTestPolicy(allow=frozenset({"gw-0"}))
    assert policy.refusal("gw-0", TAGGED) == ""
    assert policy.refusal("gw-1", TAGGED) == "load-test-not-allowed"
    assert policy.refusal("gw-1", LIVE) == ""  # production is never refused by it
    policy.enabled = False
    assert policy.refusal("gw-0", TAGGED) == "load-test-off"
    guard = ExternalGuard("bank-channel")
    assert guard.decide(TAGGED) == "mocked" and guard.decide(LIVE) == "called"


def _span(i: int, **value: Any) -> Event:
    base: dict[str, Any] = dict(
        trace_id="", span_id="", parent="", mark="F", op="PayRequest", payment="",
        writes=(), shadow_rows_read=0, outcome="", node="s",
    )  # fmt: skip
    return Event("info", "trace", "span", {**base, **value}, float(i), i)


def _tagged_payment(i: int, pid: str) -> Event:
    value = {"id": pid, "from": "u1", "to": "m2", "amount_cents": 5}
    return Event("invoke", 7, "load-test:transfer", value, float(i), i)


@pytest.mark.parametrize(
    ("span", "violation"),
    [
        ({"mark": "T", "trace_id": "p1", "writes": ("u1", "pt_m2")}, "tagged-write-to-production"),
        ({"mark": "F", "trace_id": "p1", "writes": ()}, "lost-tag"),
        ({"mark": "", "payment": "p1", "writes": ("u1",)}, "lost-tag"),
        ({"mark": "F", "trace_id": "p9", "writes": ("pt_u1",)}, "production-write-to-shadow"),
        ({"mark": "F", "op": "ReadBalances", "shadow_rows_read": 3}, "production-read-of-shadow"),
        ({"mark": "T", "trace_id": "p1", "op": "external:bank", "outcome": "called"},
         "tagged-call-left-the-platform"),
    ],
)  # fmt: skip
def test_each_rule_catches_its_violation(span: dict[str, Any], violation: str) -> None:
    history = [_tagged_payment(0, "p1"), _span(1, **span)]
    verdict = check_isolation(history)
    assert verdict.valid is False
    assert violation in verdict.details["violations"]


def test_clean_history_is_valid_and_no_spans_is_unknown() -> None:
    clean = [_tagged_payment(0, "p1"), _span(1, mark="T", trace_id="p1", writes=("pt_u1",))]
    assert check_isolation(clean).valid is True
    assert check_isolation([_tagged_payment(0, "p1")]).valid == "unknown"
    read = Event("ok", 3, "read", {"u1": 5, "pt_u1": 5}, 2.0, 2)
    assert check_isolation([*clean, read]).valid is False


def test_the_platform_keeps_load_tests_apart_and_the_checker_catches_the_planted_leak() -> None:
    good = simulate("ch7", "steady", seed=3, duration_s=1.0)
    iso = good.verdicts["isolation"]
    assert iso.valid is True, iso.summary
    assert iso.details["load_test_payments"] > 50 and iso.details["tagged_spans"] > 100
    assert good.verdicts["bank"].valid is True and good.verdicts["ledger"].valid is True
    # Every tagged payment's path is in the history: client -> gateway -> store.
    spans = [e.value for e in good.history if e.f == "span"]
    tagged = {e.value["id"] for e in good.history if e.f == "load-test:transfer"}
    pid = sorted(tagged)[0]
    path = [(s["node"], s["op"]) for s in spans if s["trace_id"] == pid]
    assert path[0][0].startswith("gw-") and any(n.startswith("shard-") for n, _ in path), path
    leak = simulate("ch7", "steady", seed=3, duration_s=1.0, variant="leak")
    caught = leak.verdicts["isolation"]
    assert caught.valid is False
    assert caught.details["violations"]["lost-tag"] > 0
    assert caught.details["violations"]["tagged-write-to-production"] > 0
    assert leak.as_expected  # the chapter declares the leak variant's failure


def test_kill_switch_stops_all_tagged_traffic_at_once() -> None:
    from chapters import get_stage
    from reference.runtime.sim import SimRuntime

    stage = get_stage("ch7")
    opts = stage.options(seed=2, duration_s=2.0)
    rt = SimRuntime(topology=stage.topology(opts), seed=opts.seed)
    dep = stage.build(rt, opts)
    rt.start()
    dep.apply_scenario("steady")
    switch_ms = rt.now_ms + 1_200.0
    rt.call_at(switch_ms, lambda: dep.kill_switch(False))  # type: ignore[attr-defined]
    rt.run_until(dep.end_ms)
    late = [
        e for e in dep.history
        if e.f == "span" and e.value["mark"] == "T" and e.value["node"].startswith("shard-")
        and e.time_ms > switch_ms + 50.0 and e.value["op"] == "PayRequest"
    ]  # fmt: skip
    refused = [
        e for e in dep.history
        if e.f == "span" and e.value["outcome"] == "load-test-off"
    ]  # fmt: skip
    assert refused, "tagged payments after the switch are refused at the gateway"
    assert not late, late[:2]
    assert dep.run_checks()["isolation"].valid is True


def test_a_coordinator_crash_resumes_tagged_transactions_still_tagged() -> None:
    # The crash scenario kills a shard, then the gateway that coordinates TCC:
    # on restart it resumes phase 2 from its disk, and a tagged branch must
    # come back with its trace (else it would confirm against production rows).
    result = simulate("ch7", "crash", seed=1, duration_s=2.0)
    tagged = {e.value["id"] for e in result.history if e.f == "load-test:transfer"}
    events = result.deployment.rt.telemetry.events  # type: ignore[attr-defined]
    resumed = [e for e in events if e.kind == "tcc-recover" and e.fields["xid"] in tagged]
    assert resumed, "the crash must catch tagged transactions in flight"
    assert result.verdicts["isolation"].valid is True, result.verdicts["isolation"].summary
    assert result.verdicts["ledger"].valid is True
