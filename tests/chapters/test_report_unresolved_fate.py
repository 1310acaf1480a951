"""The errors line points at no command that cannot give the timeouts' fate: `d11 run ch5
--scenario crash --variant no-dedup --seed 1 --no-store` said "d11 check ledger on the run's
folder reads their fate from the final read" with no folder, and that check finds the fate
unresolvable (the double settlements spoil the balances). It now says why not."""

from __future__ import annotations

import pytest

from chapters.report import _errors_line


def test_no_pointer_to_a_command_that_cannot_tell() -> None:
    settled = {"applied": 0, "not_applied": 0, "unknown": 114, "asked": 0}
    s = {"payments": 364, "error_rate": 0.313, "errors": {"timeout": 114}, "timeouts": 114,
         "settled": settled, "final_read_unresolved": "the run has no final read"}  # fmt: skip
    line = _errors_line(s)
    assert "d11 check ledger" not in line and "folder" not in line, line
    assert line.endswith(
        "; 114 timeouts (no answer by the deadline): not asked again (the final phase retries "
        "none), so unknown to their users, and the final read cannot tell their fate: the run "
        "has no final read"
    ), line


@pytest.mark.slow
def test_no_dedup_says_why_the_final_read_cannot_tell() -> None:
    from chapters.run import simulate

    run = simulate("ch5", "crash", seed=1, variant="no-dedup", checks=())
    assert "final_read_resolution" not in run.summary
    assert run.summary["final_read_unresolved"].startswith(
        "no choice of them gives the final balances"
    )
