"""Chapter views: the panel a chapter adds to the TUI, and its keys (chapters 5, 6 and 7).

`view_for(stage_id)` builds a fresh view for a session (chapters 5-7 and
the capstone, `double11`; None: the chapter has none, and the TUI shows its
four panels alone). `CHAPTER_EXTRA` holds the stage options a live TUI
session asks of a chapter so its keys have something to act through
(chapter 6, alone or in the capstone: the control plane that pushes an
operator's changes to every gateway). `ALL_KEYS` lists every chapter key
once, for the app's bindings; a key works only where its view is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tui.views.base import ChapterView, ViewError, ViewKey
from tui.views.capstone import CapstoneView
from tui.views.degrade import DegradeView
from tui.views.mq import MqView
from tui.views.rehearsal import RehearsalView

__all__ = [
    "ALL_KEYS",
    "CHAPTER_EXTRA",
    "VIEWS",
    "ChapterView",
    "ViewError",
    "ViewKey",
    "view_for",
]

VIEWS: dict[str, Callable[[], ChapterView]] = {
    "ch5": MqView,
    "ch6": DegradeView,
    "ch7": RehearsalView,
    "double11": CapstoneView,  # the capstone: chapters 5-7's panels in brief, their keys
}
CHAPTER_EXTRA: dict[str, dict[str, Any]] = {"ch6": {"control": True}, "double11": {"control": True}}


def view_for(stage_id: str) -> ChapterView | None:
    make = VIEWS.get(stage_id)
    return make() if make is not None else None


def _all_keys() -> tuple[ViewKey, ...]:
    seen: dict[str, ViewKey] = {}
    for make in VIEWS.values():
        for k in make.keys:  # type: ignore[attr-defined]
            assert seen.get(k.key, k).action == k.action, f"key {k.key} means two things"
            seen.setdefault(k.key, k)
    return tuple(seen.values())


ALL_KEYS: tuple[ViewKey, ...] = _all_keys()
