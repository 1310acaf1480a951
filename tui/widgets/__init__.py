"""The panels of the TUI, one job each; they draw `tui.model.Frame`s and know no simulator."""

from tui.widgets.checks import ChecksPanel
from tui.widgets.events import EventsPanel
from tui.widgets.status import StatusBar
from tui.widgets.topology import TopologyPanel
from tui.widgets.traffic import TrafficPanel

__all__ = ["ChecksPanel", "EventsPanel", "StatusBar", "TopologyPanel", "TrafficPanel"]
