"""Cities, cells and nodes: each node's role and health; cut links drawn as cut."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from tui.model import LOAD_WHAT, Frame, NodeView
from tui.widgets.lines import LinesPanel
from tui.widgets.palette import Palette, palette
from tui.widgets.titles import FittedTitle

if TYPE_CHECKING:
    from typing import Unpack

    from tui.widgets.args import WidgetArgs


__all__ = ["TopologyPanel"]

ROLE_SHORT = {
    "gateway": "gateway",
    "shard": "store",
    "replica": "replica",
    "config": "config",
    "controller": "control",
    "client": "client",
    "consumer": "consumer",
    "producer": "producer",
    "front": "front",
}


class TopologyPanel(FittedTitle, LinesPanel, can_focus=True):
    """The placement tree of the run; arrow keys pick the node the fault keys hit."""

    DEFAULT_CSS = """
    TopologyPanel { padding: 0 1; overflow-y: auto; }
    """
    BINDINGS = [  # noqa: RUF012
        Binding("up", "move(-1)", "prev node", show=False),
        Binding("down", "move(1)", "next node", show=False),
    ]

    class Selected(Message):
        def __init__(self, node: str) -> None:
            super().__init__()
            self.node = node

    def __init__(self, **kwargs: Unpack[WidgetArgs]) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self.selected: str = ""
        self._select_seen = 0  # the last of the session's selection requests applied

    def selectable(self) -> list[str]:
        if self.frame is None:
            return []
        return [n.id for n in self.frame.nodes if not n.is_client]

    def show(self, frame: Frame) -> None:
        self.frame = frame
        choices = self.selectable()
        if choices and self.selected not in choices:
            self.selected = frame.first_target if frame.first_target in choices else choices[0]
        count, node = frame.select
        if count != self._select_seen:  # a key asked for this node (once: then ↑↓ again)
            self._select_seen = count
            if node in choices and node != self.selected:
                self.selected = node
                self.post_message(self.Selected(node))
        self.redraw()

    def on_focus(self) -> None:
        self.redraw()

    def on_blur(self) -> None:
        self.redraw()

    def action_move(self, delta: int) -> None:
        choices = self.selectable()
        if not choices:
            return
        i = choices.index(self.selected) if self.selected in choices else 0
        self.selected = choices[(i + delta) % len(choices)]
        self.post_message(self.Selected(self.selected))
        self.redraw()

    def build(self) -> Text:
        f = self.frame
        if f is None:
            return Text("building the stage…")
        p = palette(self.app)
        by_id = {n.id: n for n in f.nodes}
        cells_total = sum(len(cells) for cells in f.layout.values())
        full_rows = 2 * len(f.layout) + cells_total + len(f.nodes) + len(f.cuts) + 9
        compact = full_rows > self.content_size.height
        out = Text(no_wrap=True, overflow="ellipsis")
        for city, cells in f.layout.items():
            out.append("⌂ ", style=p.primary)
            out.append(city, style=f"bold {p.primary}")
            if city in f.cut_off:
                out.append("  ✂ cut off from the rest", style=f"bold {p.bad}")
            out.append("\n")
            cell_names = list(cells)
            name_w = max(len(c) for c in cell_names) if cell_names else 0
            for ci, cell in enumerate(cell_names):
                last_cell = ci == len(cell_names) - 1
                out.append(" └─ " if last_cell else " ├─ ", style=p.dim)
                cell_nodes = [by_id[n] for n in cells[cell] if n in by_id]
                cut = cell in f.cut_off
                # A node's links cut because its city or cell is cut off: the header says it.
                explained = city in f.cut_off or cut
                if compact:
                    # One line per cell: every node as a glyph and its name.
                    out.append(f"{cell:<{name_w}} ", style=f"bold {p.bad}" if cut else "bold")
                    for node in cell_nodes:
                        self._node_token(out, node, p, explained)
                    out.append("\n")
                    continue
                out.append(cell, style="bold")
                if cut:
                    out.append("  ✂", style=f"bold {p.bad}")
                out.append("\n")
                for node in cell_nodes:
                    out.append("     " if last_cell else " │   ", style=p.dim)
                    self._node_line(out, node, p, explained)
            if not compact:
                out.append("\n")
        out.append("links ", style=p.dim)
        if f.cuts:
            if len(f.cuts) > 1:
                out.append("\n")
            for line in f.cuts:
                out.append(f" {line}\n", style=f"bold {p.bad}" if "✂" in line else p.warn)
        else:
            out.append("all up\n", style=p.ok)
        self._selected_box(out, by_id.get(self.selected), p, hints=not compact)
        legend = "● up ✖ down ‖ paused ★ leader ✂ cut ⋯ partly cut ◦ client"
        if not compact:
            legend = "\n● up  ✖ down  ‖ paused  ★ leader\n✂ cut off  ⋯ some links cut  ◦ client"
        out.append(legend, style=p.dim)
        return out

    def _node_token(self, out: Text, n: NodeView, p: Palette, explained: bool) -> None:
        """A node in a compact cell line: glyph, name, marks."""
        glyph, style = self._glyph(n, p)
        out.append(f" {glyph}", style=style)
        chosen = n.id == self.selected
        name_style = "reverse bold" if chosen and self.has_focus else ("bold" if chosen else "")
        if n.is_client:
            name_style = (name_style + " dim").strip()
        out.append(n.id, style=name_style or None)
        if n.leader:
            out.append("★", style=f"bold {p.accent}")
        if n.cut == "partial" and not explained:
            out.append("⋯", style=p.warn)
        out.append(" ")

    def _glyph(self, n: NodeView, p: Palette) -> tuple[str, str]:
        glyph, style = {
            "up": ("●", p.ok),
            "crashed": ("✖", f"bold {p.bad}"),
            "paused": ("‖", f"bold {p.warn}"),
        }.get(n.status, ("?", p.warn))
        if n.is_client and n.status == "up":
            return "◦", p.dim
        if n.cut == "isolated" and n.status == "up":
            return "✂", f"bold {p.bad}"
        return glyph, style

    def _selected_box(self, out: Text, n: NodeView | None, p: Palette, hints: bool) -> None:
        """What the fault keys will hit, and how it is doing."""
        if n is None:
            return
        out.append("\nselected ", style=p.dim)
        out.append(n.id, style=f"bold {p.accent}")
        out.append(
            f"  {ROLE_SHORT.get(n.role, n.role) or 'node'} in {n.cell}, {n.city}\n", style=p.dim
        )
        status = {"up": p.ok, "crashed": p.bad, "paused": p.warn}.get(n.status, p.warn)
        out.append("  status ", style=p.dim)
        out.append(n.status, style=f"bold {status}")
        out.append("  links ", style=p.dim)
        out.append(n.cut or "up", style=p.bad if n.cut else p.ok)
        out.append("  clock ", style=p.dim)
        out.append(
            f"{n.skew_ms:+.0f} ms" if n.skew_ms else "exact", style=p.warn if n.skew_ms else ""
        )
        out.append(f"\n  queue {n.queue:,}", style=p.dim)
        if not n.is_client and n.status == "up":
            out.append(f"  load {n.load_tps:,.0f} {n.load_what}/s")
            out.append(f": {LOAD_WHAT.get(n.load_what, '')}", style=p.dim)
        out.append("\n")
        if hints:
            out.append("  k kill  r restart  p pause  s skew  c cut city  h heal\n", style=p.dim)

    def _node_line(self, out: Text, n: NodeView, p: Palette, explained: bool) -> None:
        chosen = n.id == self.selected
        out.append("▸ " if chosen else "  ", style=f"bold {p.accent}")
        glyph, style = self._glyph(n, p)
        out.append(glyph + " ", style=style)
        name_style = "reverse bold" if chosen and self.has_focus else ("bold" if chosen else "")
        if n.is_client:
            name_style += " dim"
        out.append(f"{n.id:<14}", style=name_style.strip())
        out.append(f" {ROLE_SHORT.get(n.role, n.role):<8}", style=p.dim)
        if n.leader:
            out.append(" ★", style=f"bold {p.accent}")
        if n.cut == "isolated":
            out.append(" ✂", style=f"bold {p.bad}")
        elif n.cut == "partial" and not explained:
            out.append(" ⋯", style=p.warn)
        if n.status == "crashed":
            out.append(" down", style=p.bad)
        elif n.status == "paused":
            out.append(f" paused, {n.queue:,} queued", style=p.warn)
        elif not n.is_client:
            out.append(f" {n.load_tps:>5.0f} {n.load_what}/s")
            if n.queue > 50:
                out.append(f" {n.queue:,} queued", style=p.warn)
        if n.skew_ms:
            out.append(f" clock {n.skew_ms:+.0f}ms", style=p.warn)
        out.append("\n")
