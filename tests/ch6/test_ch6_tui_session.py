"""`d11 tui ch6` starts: the TUI's session runs chapter 6 and judges it live."""

from __future__ import annotations

from tui.session import Session, SessionConfig


def test_the_tui_session_runs_chapter_6() -> None:
    s = Session(SessionConfig(chapter="ch6", seed=1))
    s.step(3_000.0)
    ids = {n.id for n in s.frame().nodes}
    assert {"gw-edge", "gw-pay", "paydb", "notify", "loyalty", "recommend"} <= ids
    views = {c.name: c for c in s.run_checks()}
    assert views["slo"].valid is True
