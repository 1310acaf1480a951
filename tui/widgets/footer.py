"""The footer: every key that fits the terminal's width, the least needed left out first.

Textual's footer lays its keys out in one line and cuts whatever passes the
right edge, in the middle of a word ("l s▏^p palette" at 120 columns in
chapter 5, and "q quit" gone at 100). This one measures its keys first and
leaves out whole keys, in `DROP_ORDER`, until the rest fit: a chapter's own
keys first (they are on their panel's bottom edge as well), then the ones a
learner needs least. Left-out keys still work, and ctrl+p lists every key, so
its hint stays; `q` is never left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.app import ComposeResult
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Footer

__all__ = ["DROP_ORDER", "FittedFooter", "fitted_keys", "key_width"]

# Actions in the order they are left out when the line is full. Chapter keys
# (`chapter(...)`) go before all of these, the last one first; an action not
# named here goes after them; `quit` never.
DROP_ORDER = (
    "skew",
    "toggle_sim",
    "play_sim",
    "pause_node",
    "restart",
    "toggle_view",
    "scrub",
    "spike",
    "heal",
    "cut",
    "kill",
    "save",
    "judge",
)
_KEEP = "quit"
_PALETTE_CLASS = "-command-palette"
_PALETTE_EDGE = 2  # its left border and its right margin


def key_width(key_display: str, description: str) -> int:
    """Columns one compact footer key takes: key, space, description, margin."""
    return len(key_display) + (1 + len(description) if description else 0) + 1


def _drop_rank(action: str, position: int) -> tuple[int, int]:
    """Sort key: lower is left out sooner."""
    name = action.partition("(")[0]
    if name == "chapter":
        return (0, -position)  # the last chapter key first
    if name == _KEEP:
        return (3, 0)
    if name in DROP_ORDER:
        return (1, DROP_ORDER.index(name))
    return (2, position)


def fitted_keys(keys: Sequence[tuple[str, int]], width: int) -> set[int]:
    """Which of `keys` (action, columns), by position, fit in `width` columns,
    leaving out whole keys by `_drop_rank` until they do (never `quit`)."""
    kept = set(range(len(keys)))
    total = sum(columns for _, columns in keys)
    order = sorted(kept, key=lambda i: _drop_rank(keys[i][0], i))
    for i in order:
        if total <= width or keys[i][0] == _KEEP:
            break
        kept.discard(i)
        total -= keys[i][1]
    return kept


class FittedFooter(Footer):
    """`Footer` that leaves out whole keys instead of cutting the line (module docstring)."""

    _laid_out_width = 0  # the width the keys were last fitted to

    def compose(self) -> ComposeResult:
        keys: list[Widget] = list(super().compose())
        self._laid_out_width = self.size.width or self.app.size.width
        yield from _fit(keys, self._laid_out_width)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._laid_out_width:  # refit to the new width
            self.call_after_refresh(self.recompose)


def _fit(keys: Iterable[Widget], width: int) -> list[Widget]:
    widgets = list(keys)
    sized: list[tuple[str, int]] = []
    for w in widgets:
        action = str(getattr(w, "action", ""))
        columns = key_width(str(getattr(w, "key_display", "")), str(getattr(w, "description", "")))
        if w.has_class(_PALETTE_CLASS):
            action, columns = _KEEP, columns + _PALETTE_EDGE - 1  # kept like q: it lists the rest
        sized.append((action, columns))
    kept = fitted_keys(sized, width)
    return [w for i, w in enumerate(widgets) if i in kept]
