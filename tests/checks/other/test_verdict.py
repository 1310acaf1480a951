"""The shared verdict: JSON shape, exit statuses, combining several."""

from __future__ import annotations

import json

import pytest

from checks.verdict import Verdict, checks_map, combine


def test_verdict_json_and_exit_codes() -> None:
    v = Verdict("bank", False, "bad", {"accounts": ("a", "b"), 3: {1, 2}}, [("x", 1)])
    obj = json.loads(json.dumps(v.to_json()))
    assert obj == {
        "checker": "bank",
        "valid": False,
        "summary": "bad",
        "details": {"accounts": ["a", "b"], "3": [1, 2]},
        "witness": [["x", 1]],
    }
    assert [Verdict("x", s, "").exit_code for s in (True, False, "unknown")] == [0, 1, 2]
    with pytest.raises(AssertionError):
        Verdict("x", "maybe", "")  # type: ignore[arg-type]


def test_combine_and_checks_map() -> None:
    ok, bad, unk = (Verdict(n, s, "") for n, s in (("a", True), ("b", False), ("c", "unknown")))
    assert combine([ok, unk]) == "unknown"
    assert combine([ok, unk, bad]) is False
    assert combine([ok]) is True
    assert set(checks_map([ok, bad])) == {"a", "b"}
    with pytest.raises(AssertionError):
        checks_map([ok, ok])
