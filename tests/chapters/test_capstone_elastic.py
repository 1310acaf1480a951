"""The one-owner check of the elastic cell, on hand-made histories (cheap)."""

from __future__ import annotations

from typing import Any

from chapters.capstone.elastic import check_owners, handover_figures
from checks.history import Event


def _ev(t: float, f: str, **value: Any) -> Event:
    return Event("info", "nemesis", f, value, t, 0)


def _move(*, new_first_accept_ms: float, how: str = "released") -> list[Event]:
    """hz-1 owns bucket 0 in version 1; at 100 ms version 2 gives it to el-1; hz-1
    releases it at 130 ms (its last payment of it done)."""
    return [
        _ev(10.0, "owner-accept", bucket=0, version=1, cell="hz-1"),
        _ev(100.0, "range-move", buckets=[0], to="el-1", version=2),
        _ev(101.0, "range-taken", buckets=[0], version=2, cell="el-1", frm="hz-1", how=how),
        _ev(130.0, "range-released", buckets=[0], version=2, cell="hz-1", to="el-1"),
        _ev(new_first_accept_ms, "owner-accept", bucket=0, version=2, cell="el-1"),
    ]


def test_a_handover_after_the_release_is_one_owner() -> None:
    history = sorted(_move(new_first_accept_ms=140.0), key=lambda e: e.time_ms)
    verdict = check_owners(history)
    assert verdict.valid is True, verdict.details
    assert handover_figures(history)[0]["handover_ms"] == 1.0


def test_serving_before_the_old_owner_released_is_two_owners() -> None:
    verdict = check_owners(_move(new_first_accept_ms=120.0, how="no-wait"))
    assert verdict.valid is False
    assert "two owners at once" in verdict.details["violations"][0]


def test_two_cells_in_one_version_and_a_stale_owner_are_caught() -> None:
    history = [
        *_move(new_first_accept_ms=140.0),
        _ev(150.0, "owner-accept", bucket=0, version=2, cell="hz-1"),
    ]
    found = check_owners(history).details["violations"]
    assert any("two owners ['el-1', 'hz-1']" in v for v in found), found
    assert any("hz-1 served it, el-1 owns it" in v for v in found), found


def test_a_takeover_after_the_timeout_is_not_held_to_the_release() -> None:
    """The old owner was cut off (still on version 1): its late release does not make
    the new owner's service a violation."""
    assert check_owners(_move(new_first_accept_ms=120.0, how="timeout")).valid is True
