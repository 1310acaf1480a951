"""The pipeline's load-test line and ch5:isolation count the same payments, or the line
names the difference: `d11 run double11 --no-store` (seed 1) said "198 tagged payments"
while ch5:isolation said "216 load-test payments" (18 refused before the queue)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from chapters.report import _night


def _text(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    Console(file=out, width=400, no_color=True).print(_night(summary))
    return " ".join(out.getvalue().split())


def _pipeline(load_test: dict[str, object]) -> dict[str, Any]:
    pipe = {"payments": 1910, "committed": 1910, "committed_by_check": 131, "rolled_back": 0,
            "rolled_back_by_check": 0, "settled": 1910, "load_test": load_test}  # fmt: skip
    return {"parts": {}, "pipeline": pipe}


def test_tagged_payments_that_never_reached_the_queue_are_named() -> None:
    load = {"payments": 198, "committed": 198, "settled": 198, "load_test_payments": 216,
            "tagged_spans": 1242, "violations": {}}  # fmt: skip
    text = _text(_pipeline(load))
    assert (
        "load test through it: 216 tagged payments, 198 of them through the queue: 198 "
        "committed and 198 settled in shadow accounts; 1,242 tagged spans" in text
    ), text


def test_one_count_when_every_tagged_payment_reached_the_queue() -> None:
    load = {"payments": 198, "committed": 198, "settled": 198, "load_test_payments": 198,
            "tagged_spans": 1242, "violations": {}}  # fmt: skip
    text = _text(_pipeline(load))
    assert "load test through it: 198 tagged payments, 198 committed" in text, text
