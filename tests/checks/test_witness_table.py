"""The witness table `d11 check` prints: a time reads as milliseconds to a tenth,
not as the raw float that wrapped over two lines of the table (the trial's F3)."""

from __future__ import annotations

from checks.cli_checkers import _witness_rows
from checks.verdict import Verdict


def test_a_ledger_witness_time_is_rounded_to_a_tenth_of_a_millisecond() -> None:
    witness = [{"index": 7, "time_ms": 35729.0140909032, "kind": "final-read",
                "message": "a balance off by 100", "explanations": ["none fits"]}]  # fmt: skip
    rows = _witness_rows(Verdict("ledger", False, "wrong", witness=witness))
    assert rows is not None
    cols, body = rows
    assert body[0][cols.index("time_ms")] == "35729.0"


def test_a_bank_witness_time_is_rounded_and_its_other_cells_kept() -> None:
    witness = [{"index": 3, "time_ms": 12.349, "process": "client-1", "kind": "read",
                "total": 999, "message": "the total moved"}]  # fmt: skip
    rows = _witness_rows(Verdict("bank", False, "wrong", witness=witness))
    assert rows is not None
    cols, body = rows
    assert body[0] == ["3", "12.3", "client-1", "read", "999", "the total moved"]
    assert cols[1] == "time_ms"
