"""A failing exercise's history excerpt shows the events its verdict names.

Before: `d11 learn check ch5-dedup` with a consumer that does not deduplicate
said "effect applied 2 times (indices [263, 3936])", and its excerpt showed the
first eight events of that message's story (transfer, send, commit, another
group's receive) and neither apply (a newcomer's trial).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from checks.history import Event
from checks.verdict import Verdict
from learn.feedback import HISTORY_LINES_MAX, history_lines


def test_the_events_a_witness_names_are_in_the_excerpt() -> None:
    msg = "client-3-4"
    history = [Event("invoke", 1, "transfer", {"id": msg}, float(i), i) for i in range(20)]
    history += [Event("ok", 9, "apply", {"id": msg, "group": "loyalty"}, 900.0, 263)]
    history += [Event("invoke", 1, "send", {"id": msg}, float(i), 264 + i) for i in range(20)]
    history += [Event("ok", 7, "apply", {"id": msg, "group": "loyalty"}, 3_000.0, 3936)]
    witness = [{"message": f"message {msg} in group loyalty: effect applied 2 times "
                           "(indices [263, 3936])"}]  # fmt: skip
    verdict = Verdict("delivery", False, "1 effect applied twice", witness=witness)
    result: Any = SimpleNamespace(verdicts={"delivery": verdict}, history=history)
    lines = history_lines(result, ("delivery",))
    shown = [line for line in lines[2:] if line.startswith("  t=")]
    assert len(shown) == HISTORY_LINES_MAX
    assert sum(" apply " in line for line in shown) == 2  # both applies, the evidence
    assert shown[0].startswith("  t=     0.0 ms")  # in the history's order
    assert "    (" in "\n".join(lines[2:])  # the events left out are said to be
