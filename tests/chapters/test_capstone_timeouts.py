"""The capstone headline's timeouts tell the story its ledger checks tell (the
newcomer's trial, finding 7): `d11 run double11 --seed 1` said "ch7's 354 stay
unknown to their users (those clients do not ask again)" while `ch7:ledger` said
"538 acknowledged, 0 indefinite": chapter 7's own system's final phase retries its
timeouts by id, each of the 354 was acknowledged on the retry, and 184 in time +
354 late is the check's 538. The headline now says, system by system, what the
final phase found, and how many payments were acknowledged in all.
"""

from __future__ import annotations

import pytest

from chapters.report import _errors_line
from chapters.run import RunResult, simulate

# The smallest night found whose chapter 7 system has timeouts (8, all applied on
# the final phase's retry): seed 2, 2 s of traffic at 1/1000 (~4 s of CPU).
NIGHT = {"duration_s": 2.0, "scale": 1 / 1000}


@pytest.fixture(scope="module")
def night() -> RunResult:
    return simulate("double11", "double11", seed=2, **NIGHT)


def _acknowledged_by_its_check(night: RunResult, chapter: str) -> int:
    """The payments a system's own check counts acknowledged: chapter 7's and 6's
    ledgers (their transfers are their payments); chapter 4's ledger also holds the
    pipeline's settlements, so its payments are the pipeline check's `paid`."""
    if chapter == "ch4":
        return int(night.verdicts["double11:pipeline"].details["paid"])
    name = {"ch6": "ch6:core-ledger", "ch7": "ch7:ledger"}[chapter]
    return int(night.verdicts[name].details["transfers"]["acknowledged"])


@pytest.mark.slow
def test_every_system_s_timeouts_are_what_its_final_phase_found(night: RunResult) -> None:
    s = night.summary
    systems = {t["chapter"]: t for t in s["settled"]["systems"]}
    assert systems["ch7"]["timeouts"] > 0, systems  # the night this test is for
    assert s["settled"]["not_asked"] == 0 and s["settled"]["not_asked_by"] == []
    for name, row in s["parts"].items():
        chapter = row["chapter"]
        t = systems.get(chapter)
        applied = t["applied"] if t else 0
        assert _acknowledged_by_its_check(night, chapter) == row["ok"] + applied, (name, t)
    t = systems["ch7"]
    assert t["asked"] and not t["lookups"] and t["applied"] == t["timeouts"], t
    line = _errors_line(s)
    assert "stay unknown" not in line, line
    assert (
        f"ch7's {t['timeouts']:,} (retry by id): {t['applied']:,} applied, 0 not, so "
        f"{t['ok'] + t['applied']:,} payments acknowledged in all ({t['ok']:,} in time, "
        f"{t['applied']:,} late)"
    ) in line, line


def test_a_system_asked_again_says_what_it_found_and_one_not_asked_says_so() -> None:
    """Hand-made, fast: seed 1's full night's figures, and a system whose final
    phase asked about none of its timeouts (a client that does not ask again)."""
    ch4 = {"chapter": "ch4", "timeouts": 99, "ok": 1811, "asked": True, "lookups": True,
           "applied": 99, "not_applied": 0, "unknown": 0}  # fmt: skip
    ch7 = {"chapter": "ch7", "timeouts": 354, "ok": 184, "asked": True, "lookups": False,
           "applied": 354, "not_applied": 0, "unknown": 0}  # fmt: skip
    s = {"payments": 5444, "error_rate": 0.2775, "errors": {"try-timeout": 1055, "timeout": 453},
         "timeouts": 453, "settled": {"applied": 453, "not_applied": 0, "unknown": 0,
         "asked_by": ["ch4", "ch7"], "not_asked": 0, "not_asked_by": [],
         "systems": [ch4, ch7]}}  # fmt: skip
    line = _errors_line(s)
    assert (
        "; 453 timeouts (no answer by the deadline), asked again by the final phase: "
        "ch4's 99 (retry, then lookup by id): 99 applied, 0 not, so 1,910 payments "
        "acknowledged in all (1,811 in time, 99 late); ch7's 354 (retry by id): 354 "
        "applied, 0 not, so 538 payments acknowledged in all (184 in time, 354 late)"
    ) in line, line
    ch7 |= {"asked": False, "applied": 0, "unknown": 354}
    s["settled"] |= {"applied": 99, "asked_by": ["ch4"], "not_asked": 354, "not_asked_by": ["ch7"]}
    line = _errors_line(s)
    assert "ch7's 354 stay unknown to their users (those clients do not ask again)" in line
    assert "538" not in line, line
