"""The transactional checker: each anomaly class caught, clean histories pass."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from other_builder import History
from txn_sim import simulate_txns

from checks.history import HistoryError
from checks.txn import check_txn
from checks.txn.models import weakest


def asked(mops: list[list[Any]]) -> list[list[Any]]:
    """The invoke form of micro-ops: reads not yet filled in."""
    return [[f, k, None if f == "r" else v] for f, k, v in mops]


def serial(*txns: list[list[Any]] | tuple[str, list[list[Any]]]) -> History:
    """Transactions one after another, each by its own process."""
    h = History()
    for p, t in enumerate(txns):
        status, mops = t if isinstance(t, tuple) else ("ok", t)
        h.invoke(p, "txn", asked(mops))
        h.add(status, p, "txn", mops if status == "ok" else asked(mops))
    return h


def concurrent(*txns: list[list[Any]]) -> History:
    """All invoked, then all completed ok: no real-time order between them."""
    h = History()
    for p, mops in enumerate(txns):
        h.invoke(p, "txn", asked(mops))
    for p, mops in enumerate(txns):
        h.ok(p, "txn", mops)
    return h


def kinds(h: History, **kw: Any) -> set[str]:
    v = check_txn(h.events, **kw)
    json.dumps(v.to_json())  # always serializable
    return set(v.details.get("anomaly_types", []))


# --- list-append ---------------------------------------------------------


def test_clean_list_append_history_is_valid() -> None:
    h = serial(
        [["append", "x", 1], ["r", "y", []]],
        [["r", "x", [1]], ["append", "x", 2], ["append", "y", 1]],
        [["r", "x", [1, 2]], ["r", "y", [1]]],
    )
    v = check_txn(h.events)
    assert v.valid is True, v.summary
    assert v.details["edges"]["ww"] >= 1 and v.details["edges"]["wr"] >= 1


def test_g0_write_cycle() -> None:
    h = concurrent(
        [["append", "x", 1], ["append", "y", 1]],
        [["append", "x", 2], ["append", "y", 2]],
        [["r", "x", [1, 2]], ["r", "y", [2, 1]]],
    )
    v = check_txn(h.events)
    assert v.valid is False
    assert "G0" in v.details["anomaly_types"]
    assert v.details["weakest_violated"] == ["read uncommitted"]
    g0 = next(a for a in v.witness if a["kind"] == "G0")
    assert "appended 2 to x after T1 appended 1" in g0["explanation"]


def test_g1a_aborted_read() -> None:
    h = serial(("fail", [["append", "x", 1]]), [["r", "x", [1]]])
    assert "G1a" in kinds(h)


def test_g1b_intermediate_read() -> None:
    h = concurrent(
        [["append", "x", 1], ["append", "x", 2]],
        [["r", "x", [1]]],
        [["r", "x", [1, 2]]],
    )
    assert kinds(h) == {"G1b"}


def test_g1c_circular_information_flow() -> None:
    h = concurrent(
        [["append", "x", 1], ["r", "y", [1]]],
        [["append", "y", 1], ["r", "x", [1]]],
    )
    v = check_txn(h.events)
    assert "G1c" in v.details["anomaly_types"]
    assert v.details["weakest_violated"] == ["read committed"]


def test_g_single_read_skew() -> None:
    h = concurrent(
        [["append", "x", 1], ["append", "y", 1]],
        [["r", "x", []], ["r", "y", [1]]],
    )
    v = check_txn(h.events)
    assert v.details["anomaly_types"] == ["G-single"]
    assert v.details["weakest_violated"] == ["repeatable read", "snapshot isolation"]
    (a,) = v.witness
    assert "T2 read x = [] without 1, which T1 appended" in a["explanation"]


def test_g2_item_write_skew() -> None:
    h = concurrent(
        [["r", "x", []], ["append", "y", 1]],
        [["r", "y", []], ["append", "x", 1]],
    )
    h2 = History()
    h2.events = list(h.events)
    h2.op(9, "txn", asked([["r", "x", None], ["r", "y", None]]), [["r", "x", [1]], ["r", "y", [1]]])
    v = check_txn(h2.events)
    assert v.details["anomaly_types"] == ["G2-item"]
    # write skew is allowed by snapshot isolation, not by repeatable read
    assert v.details["weakest_violated"] == ["repeatable read"]


def test_lost_update() -> None:
    h = concurrent(
        [["r", "x", []], ["append", "x", 1]],
        [["r", "x", []], ["append", "x", 2]],
        [["r", "x", [1, 2]]],
    )
    assert "lost-update" in kinds(h)


def test_internal_inconsistency() -> None:
    h = serial([["append", "x", 1], ["r", "x", []]])
    assert kinds(h) == {"internal"}


def test_realtime_cycle_only_with_realtime() -> None:
    # T2 begins after T1 completed, yet misses T1's append: a stale read.
    h = serial([["append", "x", 1]], [["r", "x", []]], [["r", "x", [1]]])
    assert kinds(h) == {"G-single-realtime"}
    v = check_txn(h.events)
    assert v.details["weakest_violated"] == ["strict serializable"]
    assert check_txn(h.events, realtime=False).valid is True


def test_list_shape_anomalies() -> None:
    assert "duplicate-elements" in kinds(serial([["append", "x", 1]], [["r", "x", [1, 1]]]))
    h = serial([["append", "x", 1]], [["append", "x", 2]], [["r", "x", [2, 1]]], [["r", "x", [1]]])
    assert "incompatible-order" in kinds(h)
    assert "garbage-read" in kinds(serial([["r", "x", [7]]]))


def test_info_txn_seen_counts_as_committed() -> None:
    h = History()
    h.invoke(0, "txn", [["append", "x", 1]]).info(0, "txn", None)
    h.op(1, "txn", [["r", "x", None]], [["r", "x", [1]]])
    v = check_txn(h.events)
    assert v.valid is True
    assert v.details["committed"] == 2


# --- rw-register ---------------------------------------------------------


def test_clean_rw_register_history_is_valid() -> None:
    h = serial([["w", "x", 1]], [["r", "x", 1], ["w", "x", 2]], [["r", "x", 2], ["r", "y", None]])
    v = check_txn(h.events)
    assert v.valid is True, v.summary
    assert v.details["workload"] == "rw-register"


@pytest.mark.parametrize(
    ("txns", "expected"),
    [
        ([("fail", [["w", "x", 1]]), [["r", "x", 1]]], "G1a"),
        ([[["w", "x", 1], ["w", "x", 2]], [["r", "x", 1]]], "G1b"),
        ([[["w", "x", 1]], [["r", "x", 9]]], "garbage-read"),
        ([[["w", "x", 1], ["r", "x", 2]]], "internal"),
    ],
)
def test_rw_register_non_cycle_anomalies(txns: list[Any], expected: str) -> None:
    assert expected in kinds(serial(*txns))


def test_rw_register_g0() -> None:
    h = concurrent(
        [["r", "x", 2], ["w", "x", 1], ["w", "y", 3]],
        [["w", "x", 2], ["r", "y", 3], ["w", "y", 4]],
    )
    assert "G0" in kinds(h)


def test_rw_register_g1c() -> None:
    h = concurrent([["w", "x", 1], ["r", "y", 1]], [["w", "y", 1], ["r", "x", 1]])
    assert kinds(h) == {"G1c"}


def test_rw_register_g_single() -> None:
    h = concurrent([["w", "x", 1], ["w", "y", 1]], [["r", "x", None], ["r", "y", 1]])
    assert kinds(h) == {"G-single"}


def test_rw_register_g2_item_and_lost_update() -> None:
    skew = concurrent([["r", "x", None], ["w", "y", 1]], [["r", "y", None], ["w", "x", 1]])
    assert kinds(skew) == {"G2-item"}
    lost = concurrent([["r", "x", None], ["w", "x", 1]], [["r", "x", None], ["w", "x", 2]])
    assert "lost-update" in kinds(lost)


def test_malformed_txn_is_a_history_error() -> None:
    h = serial([["append", "x", 1], ["frob", "x", 1]])
    with pytest.raises(HistoryError, match="micro-op"):
        check_txn(h.events)
    dup = serial([["append", "x", 1]], [["append", "x", 1]])
    with pytest.raises(HistoryError, match="unique"):
        check_txn(dup.events)


def test_weakest_models() -> None:
    assert weakest({"serializable", "strict serializable", "repeatable read"}) == [
        "repeatable read"
    ]


# --- property: serial executions are strict serializable ------------------

mop = st.tuples(st.sampled_from(["append", "r"]), st.sampled_from(["x", "y", "z"]))


@given(st.lists(st.lists(mop, min_size=1, max_size=4), min_size=1, max_size=12), st.data())
def test_serial_list_append_histories_are_valid(
    plan: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    state: dict[str, list[int]] = {}
    fresh = iter(range(1, 10_000))
    txns = []
    for t in plan:
        mops: list[list[Any]] = []
        for f, k in t:
            if f == "append":
                v = next(fresh)
                state.setdefault(k, []).append(v)
                mops.append(["append", k, v])
            else:
                mops.append(["r", k, list(state.get(k, []))])
        txns.append(mops)
    h = serial(*txns)
    v = check_txn(h.events)
    assert v.valid is True, v.summary
    # Mutation: some read misses the last append before it => caught.
    stale = [
        (i, j)
        for i, mops in enumerate(txns)
        for j, m in enumerate(mops)
        if m[0] == "r"
        and m[2]
        and all(x[0] == "r" for x in mops[:j])
        and not any(x[0] == "append" and x[1] == m[1] for x in mops)
    ]
    if stale:
        i, j = data.draw(st.sampled_from(stale))
        txns[i][j] = ["r", txns[i][j][1], txns[i][j][2][:-1]]
        assert check_txn(serial(*txns).events).valid is False


@settings(max_examples=30)
@given(st.integers(0, 100_000), st.sampled_from(["list-append", "rw-register"]))
def test_simulated_strict_serializable_histories_are_valid(seed: int, workload: str) -> None:
    h = simulate_txns(seed, txns=30, workload=workload)
    v = check_txn(h.events)
    assert v.valid is True, v.summary


def test_g0_and_g1c_realtime() -> None:
    # T2 began after T1 completed, yet the list puts T2's append first.
    g0 = serial([["append", "x", 1]], [["append", "x", 2]], [["r", "x", [2, 1]]])
    assert kinds(g0) == {"G0-realtime"}
    # T1 read a value that T2, which began only after T1 completed, appended.
    g1c = serial([["r", "x", [1]]], [["append", "x", 1]])
    v = check_txn(g1c.events)
    assert v.details["anomaly_types"] == ["G1c-realtime"]
    assert "T1 completed" in v.witness[0]["explanation"]
    assert check_txn(g1c.events, realtime=False).valid is True
