"""Each panel's border titles, fullest first: a panel shows the fullest its top edge holds whole."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from textual import events

__all__ = ["PANEL_TITLES", "TITLE_MARGIN", "FittedTitle", "fitted_title"]

TITLE_MARGIN = 6  # a border title's corners, edge dashes and padding spaces

PANEL_TITLES: dict[str, tuple[str, ...]] = {
    "topology": ("Topology · ↑↓ pick a node", "Topology"),
    "traffic": (
        "Traffic · simulated tx/s (≙ real at scale)", "Traffic · simulated tx/s", "Traffic"
    ),
    "events": ("Events · simulated time", "Events"),
    "checks": ("Checks · on the history so far", "Checks"),
}  # fmt: skip


def fitted_title(titles: tuple[str, ...], width: int) -> str:
    """The fullest of `titles` that fits a panel `width` columns wide (the shortest if none)."""
    assert titles, "a panel has at least one title"
    if width <= 0:  # not laid out yet: the fullest, refitted when the panel gets its size
        return titles[0]
    room = width - TITLE_MARGIN
    return next((t for t in titles if cell_len(t) <= room), titles[-1])


class FittedTitle:
    """Mixin for a panel: refit its title on each of its own resizes.

    The panel's Resize is the one moment its width is known for sure; fitting
    "after the next refresh" from the screen raced the layout on a loaded
    machine and left the fullest title, cut, on a 34-column panel.
    """

    TITLES: ClassVar[dict[str, tuple[str, ...]]] = PANEL_TITLES

    def on_resize(self, event: events.Resize) -> None:
        titles = self.TITLES.get(getattr(self, "id", None) or "")
        if titles:
            self.border_title = fitted_title(titles, event.size.width)
