"""The capstone's queue line (`MqView.brief`): each group's lag on the topic it reads, labelled.

Trial F6: `mq ●settlement 6514 … ●pt_settlement 12617` had no label, and the
shadow groups' lag was counted on the production topic they never read
(12,617 was the production payments), not on the shadow topic.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from tui.views.base import Lines, Session
from tui.views.mq import MqView, topic_of

LAGS = {"payments": 12_617, "pt_payments": 7}  # messages not yet committed, by topic


class _State:
    def __init__(self) -> None:
        self.halves: dict[str, object] = {}

    def lag(self, group: str, topic: str) -> int:
        return LAGS[topic] - (1 if group.endswith("loyalty") else 0)


class _Dep:
    def __init__(self) -> None:
        self.rt = None
        self.history: list[object] = []
        self.producers: list[str] = []
        self.consumers = {
            g: [f"{g}-hz"] for g in ("settlement", "loyalty", "pt_settlement", "pt_loyalty")
        }
        self.broker_config = None

    def broker_state(self) -> _State:
        return _State()

    def lanes(self) -> list[tuple[str, str]]:
        return [(g, "pt_payments" if g.startswith("pt_") else "payments") for g in self.consumers]


def test_each_group_lag_is_counted_on_its_own_topic_and_labelled() -> None:
    dep = _Dep()
    rt = SimpleNamespace(status=lambda node: "up")
    session = cast(Session, SimpleNamespace(dep=dep, rt=rt))
    out = Lines()
    MqView().brief(session, out)
    line = "".join(text for text, _ in out.done()[0])
    assert line.startswith("mq lag "), line
    assert "settlement 12,617 " in line and "loyalty 12,616 " in line, line
    assert "pt_settlement 7 " in line and "pt_loyalty 6 " in line, line


def test_a_shadow_group_reads_the_shadow_topic_even_unlisted() -> None:
    class _NoLanes(_Dep):
        def lanes(self) -> list[tuple[str, str]]:
            return []

    assert topic_of(_NoLanes(), "pt_settlement") == "pt_payments"
    assert topic_of(_NoLanes(), "settlement") == "payments"
