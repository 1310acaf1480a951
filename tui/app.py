"""The Textual app: four panels over one live run (or a replayed store folder).

Layers, so most of it is tested without a terminal: `tui.session` runs the
stage and makes `Frame`s; `tui.replay` makes frames from a store folder;
`tui.widgets` draw frames. This module wires keys to the session and runs the
simulation in a worker thread: each tick advances simulated time by speed x
the wall time since the last one (bounded work per tick), builds a frame
under the session's lock, and hands it to the UI thread, waiting until it is
drawn, so ticks never pile up. Paused, the worker sleeps on an event: no busy
loop. The checkers run in a second worker, every couple of seconds.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import WorkerFailed

from reference.cli_options import d11_command
from tui.model import Frame
from tui.session import Session, SessionConfig, SessionError
from tui.views import ALL_KEYS
from tui.widgets import ChecksPanel, EventsPanel, StatusBar, TopologyPanel, TrafficPanel
from tui.widgets.chapter import ChapterPanel
from tui.widgets.footer import FittedFooter
from tui.widgets.titles import PANEL_TITLES, TITLE_MARGIN, fitted_title

__all__ = ["MIN_HEIGHT", "MIN_WIDTH", "TITLE_MARGIN", "D11App"]

MIN_WIDTH = 100
MIN_HEIGHT = 28
BOTH_WIDTH = 140  # from this width a chapter's panel and the event log are shown side by side
TICK_S = 0.05  # a frame per tick: up to 20 refreshes a second, >= 10 on a loaded machine
CHECK_EVERY_S = 2.0
# The checks' share of the wall time at most: a round copies the history under the
# session's lock (the capstone merges its four parts' to do it), and a long run's
# round took longer than CHECK_EVERY_S, so the simulation waited on it most of the time.
CHECK_SHARE_MAX = 0.25
CHECK_POLL_S = 0.25  # how often the check worker looks whether a round is due
THEMES = ("textual-dark", "textual-light")
COMMANDS_MAX = 64  # key presses waiting for the simulation worker

LIVE_ACTIONS = frozenset(
    {"spike", "kill", "restart", "pause_node", "skew", "cut", "heal", "judge", "traffic",
     "step", "switch", "save"}
)  # fmt: skip
REPLAY_ACTIONS = frozenset({"scrub", "scrub_to"})
# Chapters 5-7's keys (tui.views): each works, and is in the footer, only where its view is.
CHAPTER_BINDINGS = [
    Binding(k.key, f"chapter('{k.action}')", k.label, key_display=k.display or None)
    for k in ALL_KEYS
]
CHAPTER_HELP = {f"chapter('{k.action}')": k.help for k in ALL_KEYS}


SWITCH_TEXT_W = 86  # a scenario's summary in the n dialog (its box is 104 wide)


def check_wait_s(round_s: float) -> float:
    """How long to wait after a check round that took `round_s`: CHECK_EVERY_S, or
    longer, so the checks take at most CHECK_SHARE_MAX of the time."""
    assert round_s >= 0, round_s
    return max(CHECK_EVERY_S, round_s / CHECK_SHARE_MAX - round_s)


class SwitchScreen(ModalScreen[tuple[str, str] | None]):
    """Pick a chapter and a scenario; the run is rebuilt from it."""

    DEFAULT_CSS = """
    SwitchScreen { align: center middle; }
    SwitchScreen > Vertical { width: 104; height: auto; max-height: 80%;
        border: thick $accent; background: $surface; padding: 0 1; }
    SwitchScreen OptionList { height: auto; max-height: 30; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]  # noqa: RUF012

    def __init__(self, current: tuple[str, str]) -> None:
        super().__init__()
        self.current = current
        self._current_index = 0

    def compose(self) -> ComposeResult:
        from chapters import STAGES

        options: list[Option] = []
        current = 0
        for stage in STAGES.chapters():
            for name, scenario in stage.scenarios.items():
                here = (stage.id, name) == self.current
                current = len(options) if here else current
                summary = scenario.summary
                summary = (
                    summary if len(summary) <= SWITCH_TEXT_W else summary[: SWITCH_TEXT_W - 1] + "…"
                )
                # Two lines, so nothing overflows into its neighbour: what, then what it does.
                label = Text(f"{'▸' if here else ' '} {stage.id:<9}{name:<16}{stage.title}\n")
                label.append(f"{'':<11}{summary}", style="dim")
                options.append(Option(label, id=f"{stage.id}|{name}"))
        with Vertical():
            yield Static(
                "[b]Switch chapter / scenario[/b]  (↑↓ pick, enter: rebuild the run, esc: cancel)"
            )
            yield OptionList(*options, id="switch-list")
        self._current_index = current

    def on_mount(self) -> None:
        """The cursor starts on the run now; ↑↓ move it (the list has the focus)."""
        chooser = self.query_one(OptionList)
        chooser.highlighted = self._current_index
        chooser.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chapter, scenario = str(event.option.id).split("|")
        self.dismiss((chapter, scenario))


class TooSmall(Static):
    DEFAULT_CSS = """
    TooSmall { width: 100%; height: 100%; content-align: center middle; text-align: center;
        background: $error 20%; color: $text; display: none; }
    """


class MainScreen(Screen[None]):
    DEFAULT_CSS = """
    #body { height: 1fr; }
    #top { height: 3fr; min-height: 14; }
    #bottom { height: 2fr; }
    .panel { border: round $primary 60%; border-title-color: $text; border-title-style: bold; }
    .panel:focus-within, .panel:focus { border: round $accent; }
    #topology { width: 62; }
    #traffic { width: 1fr; }
    #events { width: 1fr; }
    #checks { width: 62; }
    #chapter { width: 1fr; display: none; }
    #message { height: 1; padding: 0 1; color: $text-muted; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="body"):
            with Horizontal(id="top"):
                yield TopologyPanel(id="topology", classes="panel")
                yield TrafficPanel(id="traffic", classes="panel")
            with Horizontal(id="bottom"):
                yield EventsPanel(id="events", classes="panel")
                yield ChapterPanel(id="chapter", classes="panel")
                yield ChecksPanel(id="checks", classes="panel")
        yield TooSmall(id="too-small")
        yield Static("", id="message")
        yield FittedFooter(compact=True)  # whole keys only: what does not fit is left out

    # Each panel's titles, fullest first: it shows the fullest that fits its width.
    TITLES: ClassVar[dict[str, tuple[str, ...]]] = PANEL_TITLES

    def on_resize(self) -> None:
        app = self.app
        assert isinstance(app, D11App), "the main screen is D11App's"
        app._fit()
        self.call_after_refresh(self.fit_titles)  # once the panels have their new widths

    def on_mount(self) -> None:
        self.fit_titles()
        self.query_one(TopologyPanel).focus()
        self.call_after_refresh(self.fit_titles)

    def fit_titles(self) -> None:
        """Give each panel the fullest title its top edge holds whole (never one cut short).

        Each panel also refits itself on its own Resize (`FittedTitle`); this
        covers the first frame, before any panel has been laid out.
        """
        for panel_id, titles in self.TITLES.items():
            panel = self.query_one(f"#{panel_id}")
            panel.border_title = fitted_title(titles, panel.size.width)


class D11App(App[None]):
    """`d11 tui`: a chapter's stage live on the simulator, or a stored run replayed."""

    TITLE = "d11"
    BINDINGS = [  # noqa: RUF012
        Binding("v", "toggle_view", "events"),  # or back to the panel
        Binding("m", "spike", "spike"),
        Binding("k", "kill", "kill"),
        Binding("r", "restart", "restart"),
        Binding("p", "pause_node", "pause"),
        Binding("s", "skew", "skew"),
        Binding("c", "cut", "cut city"),
        Binding("h", "heal", "heal"),
        Binding("j", "judge", "judge"),
        Binding("g", "traffic", "steady", show=False),
        Binding("left", "scrub(-1000)", "-1 s"),
        Binding("right", "scrub(1000)", "+1 s"),
        Binding("shift+left", "scrub(-10000)", "-10 s", show=False),
        Binding("shift+right", "scrub(10000)", "+10 s", show=False),
        Binding("home", "scrub_to(0)", "start", show=False),
        Binding("end", "scrub_to(-1)", "end", show=False),
        # Not in the footer (120 columns hold the rest; ctrl+p lists every key, and
        # the header shows the speed): + - . n t.
        Binding("plus,equals_sign", "speed(1)", "faster", key_display="+", show=False),
        Binding("minus", "speed(-1)", "slower", key_display="-", show=False),
        # One key, two bindings: the footer says what space does now (a replay starts
        # still, and its hint said "space plays" beside a footer's "pause sim").
        Binding("space", "toggle_sim", "pause sim"),
        Binding("space", "play_sim", "play"),
        Binding("full_stop", "step", "step", key_display=".", show=False),
        Binding("n", "switch", "switch", show=False),
        Binding("w", "save", "save"),
        Binding("t", "theme", "theme", show=False),
        Binding("q", "quit", "quit"),
        # Last: chapters 5-7's keys are on their panel's bottom edge too. What the
        # footer cannot hold is left out whole, these first, never q
        # (tui.widgets.footer.DROP_ORDER).
        *CHAPTER_BINDINGS,
    ]

    def __init__(
        self,
        source: Any = None,
        *,
        config: SessionConfig | None = None,
        autorun: bool = True,
        store_root: Path = Path("store"),
    ) -> None:
        """`source`: a built Session or Replay; or `config`, and the session is
        built in the simulation worker (a node's resources, such as its SQLite
        connection, belong to the thread that runs it)."""
        super().__init__()
        assert (source is None) != (config is None), "give a source or a config"
        self.source: Any = source
        self.config = config
        self.live = source is None or isinstance(source, Session)
        self.autorun = autorun
        self.store_root = store_root
        self._stop = threading.Event()
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=COMMANDS_MAX)
        self._sim_thread_running = False
        self.frames_shown = 0
        self.theme = THEMES[0]
        self.crash: BaseException | None = None  # what ended the app, if anything did
        self._too_small_said = ""
        self.show_events = False  # narrow screens: the event log instead of a chapter's panel
        self._has_panel = False  # the last frame had a chapter panel
        self._both = False  # the chapter panel and the event log side by side
        # (chapter, live, paused) the footer shows
        self._bindings_for: tuple[str, bool, bool] = ("", False, False)

    def _fatal_error(self) -> None:
        """An error nothing caught ends the app without Textual's traceback screen.

        `d11 tui` raises it again once the terminal is restored, and the root
        command's last resort prints it as one line and exits 2 (`--debug`
        shows the traceback). Overrides a private Textual hook, the one that
        otherwise renders the traceback on exit.
        """
        error = self._exception
        self.crash = error.error if isinstance(error, WorkerFailed) else error  # the worker's own
        self.bell()
        self._close_messages_no_wait()

    # -- layout ----------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    def on_mount(self) -> None:
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        if self.source is None and not self.autorun:
            assert self.config is not None
            self.source = Session(self.config)
        if self.source is not None:
            self.show_frame()
        if self.autorun:
            self._sim_loop()
            if self.live:
                # A daemon thread, not a Textual worker: a worker runs on the event
                # loop's executor, which closing the app waits for, so `q` during a
                # long check (lin over a minute of live history) left the terminal
                # blank for minutes. The checks only read a copy; dropping one
                # half-done at exit loses nothing.
                threading.Thread(target=self._check_loop, name="d11-checks", daemon=True).start()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        try:
            screen = self.screen
            body = screen.query_one("#body")
            small = screen.query_one(TooSmall)
        except Exception:
            return
        w, h = self.size
        too_small = w < MIN_WIDTH or h < MIN_HEIGHT
        if small.display != too_small:  # a relayout only when it changes
            body.display = not too_small
            small.display = too_small
        said = (
            f"Terminal too small: {w} x {h}\n\n"
            f"d11 tui needs at least {MIN_WIDTH} x {MIN_HEIGHT}.\n"
            "Enlarge the window (or make the font smaller)."
        )
        if too_small and said != self._too_small_said:  # the size it says is the size now
            small.update(said)
            self._too_small_said = said
        self._fit_bottom(w)

    def _fit_bottom(self, width: int) -> None:
        """A chapter's panel beside the event log when wide enough, else one of them (v)."""
        try:
            events = self.screen.query_one(EventsPanel)
            chapter = self.screen.query_one(ChapterPanel)
        except Exception:
            return
        panel = self._has_panel
        both = panel and width >= BOTH_WIDTH
        if both != self._both:  # v (one or the other) applies only below BOTH_WIDTH
            self._both = both
            self.refresh_bindings()
        show_chapter = panel and (both or not self.show_events)
        show_events = not panel or both or self.show_events
        if chapter.display != show_chapter:
            chapter.display = show_chapter
        if events.display != show_events:
            events.display = show_events

    # -- frames ----------------------------------------------------------------------
    def show_frame(self, frame: Frame | None = None) -> None:
        """Draw `frame` (default: a fresh one from the source, taken under its lock)."""
        if frame is None:
            if self.source is None:
                return
            with self.source.lock:
                frame = self.source.frame()
        screen = self.screen
        if not isinstance(screen, MainScreen):
            try:
                screen = next(s for s in self.screen_stack if isinstance(s, MainScreen))
            except StopIteration:
                return
        screen.query_one(StatusBar).show(frame)
        screen.query_one(TopologyPanel).show(frame)
        screen.query_one(TrafficPanel).show(frame)
        screen.query_one(EventsPanel).show(frame)
        screen.query_one(ChecksPanel).show(frame)
        screen.query_one(ChapterPanel).show(frame)
        screen.query_one("#message", Static).update(frame.message)
        self._has_panel = frame.chapter_panel is not None
        showing = (frame.chapter, self.live, frame.paused)  # keys that apply change with it
        if self._bindings_for != showing:
            self._bindings_for = showing
            self.refresh_bindings()
        self._fit()
        self.frames_shown += 1

    @work(thread=True, exclusive=True, group="sim")
    def _sim_loop(self) -> None:
        """The only thread that touches the simulation: builds it, runs it, applies keys."""
        if self.source is None:
            assert self.config is not None
            try:
                self.source = Session(self.config)
            except Exception as exc:  # a stage that fails to build: say so, do not hang
                self.call_from_thread(self.exit, message=f"error: {exc}")
                return
        self._sim_thread_running = True
        last = time.perf_counter()
        while not self._stop.is_set():
            source = self.source
            try:
                command = self._commands.get(timeout=0.5 if source.paused else 0.0)
            except queue.Empty:
                command = None
            if command is not None:
                command()
            elif source.paused:
                last = time.perf_counter()
                continue  # asleep in get() until a key arrives: no busy loop
            now = time.perf_counter()
            source = self.source
            with source.lock:
                source.advance(now - last)
                frame = source.frame()
            last = now
            try:
                self.call_from_thread(self.show_frame, frame)  # waits: ticks never pile up
            except Exception:
                return  # the app is closing
            rest_s = TICK_S - (time.perf_counter() - now)
            if rest_s > 0 and self._commands.empty():
                self._stop.wait(rest_s)

    def _check_loop(self) -> None:
        """Judge the run every CHECK_EVERY_S (longer after a long round: check_wait_s),
        and at once when j's final reads are in past the window: the whole run is then
        judged (`Session.whole_due`), not after a long round's wait."""
        judged_ms = -1.0
        due_s = time.perf_counter() + CHECK_EVERY_S / 4  # the first verdicts soon
        while not self._stop.wait(CHECK_POLL_S):
            session = self.source
            if session is None:
                continue  # still being built by the simulation worker
            if not isinstance(session, Session):
                return
            with session.lock:
                now_ms = session.rt.now_ms
                whole_due = session.whole_due()
            if now_ms == judged_ms or (time.perf_counter() < due_s and not whole_due):
                continue
            started_s = time.perf_counter()
            session.run_checks()
            judged_ms = now_ms
            ended_s = time.perf_counter()
            due_s = ended_s + check_wait_s(ended_s - started_s)

    def on_unmount(self) -> None:
        self._stop.set()

    # -- controls ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LIVE_ACTIONS:
            return self.live
        if action in REPLAY_ACTIONS:
            return not self.live
        if action == "chapter":
            view = getattr(self.source, "view", None) if self.live else None
            if view is None:
                return False
            return not parameters or any(k.action == parameters[0] for k in view.keys)
        if action == "toggle_view":
            return self._has_panel and self.size.width < BOTH_WIDTH
        if action in ("toggle_sim", "play_sim"):  # the one that says what space does now
            return (action == "play_sim") == bool(getattr(self.source, "paused", False))
        return True

    def _selected(self) -> str:
        """The node the topology panel points at (before its first frame: the first server)."""
        try:
            chosen = self.screen.query_one(TopologyPanel).selected
        except Exception:
            chosen = ""
        if not chosen and isinstance(self.source, Session):
            with self.source.lock:
                chosen = self.source.first_target()
        return chosen

    def _do(self, fn: Any, *args: Any) -> None:
        """Run one control on the source: in the simulation worker when it runs
        (it owns the nodes), else here; errors go to the status line."""

        def command() -> None:
            source = self.source
            try:
                with source.lock:
                    getattr(source, fn)(*args)
            except SessionError as exc:
                with source.lock:
                    source.message = f"✖ {exc}"
                self.call_from_thread(self.bell) if self._sim_thread_running else self.bell()

        if self.source is None:
            return
        if self._sim_thread_running:
            try:
                self._commands.put_nowait(command)
            except queue.Full:
                self.bell()  # more keys queued than the worker can take: drop this one
            return
        command()
        self.show_frame()

    def action_spike(self) -> None:
        self._do("spike")

    def action_traffic(self) -> None:
        self._do("resume_traffic")

    def action_kill(self) -> None:
        self._do("kill", self._selected())

    def action_restart(self) -> None:
        self._do("restart", self._selected())

    def action_pause_node(self) -> None:
        self._do("toggle_node_pause", self._selected())

    def action_skew(self) -> None:
        self._do("skew", self._selected())

    def action_cut(self) -> None:
        self._do("cut_off", self._selected())

    def action_heal(self) -> None:
        self._do("heal")

    def action_judge(self) -> None:
        self._do("judge")

    def action_chapter(self, action: str) -> None:
        self._do("chapter_action", action, self._selected())

    def action_toggle_view(self) -> None:
        self.show_events = not self.show_events
        self._fit()

    def action_speed(self, direction: int) -> None:
        self._do("set_speed", direction)

    def action_toggle_sim(self) -> None:
        self._do("toggle_pause")

    def action_play_sim(self) -> None:
        self._do("toggle_pause")

    def action_step(self) -> None:
        self._do("pause_and_step")

    def action_scrub(self, delta_ms: float) -> None:
        self._do("scrub", float(delta_ms))

    def action_scrub_to(self, at_ms: float) -> None:
        self._do("scrub_to", float(at_ms))

    def action_theme(self) -> None:
        self.theme = (
            THEMES[(THEMES.index(self.theme) + 1) % len(THEMES)]
            if self.theme in THEMES
            else THEMES[0]
        )
        self.show_frame()

    def action_switch(self) -> None:
        current = (self.source.stage.id, self.source.config.scenario)

        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self._rebuild(*choice)

        self.push_screen(SwitchScreen(current), chosen)

    def _rebuild(self, chapter: str, scenario: str) -> None:
        """A fresh session for another chapter or scenario, built where the sim runs."""

        def command() -> None:
            old = self.source
            config = old.config.with_(
                chapter=chapter, scenario=scenario, variant="", speed=old.speed
            )
            try:
                fresh = Session(config)
            except SessionError as exc:
                with old.lock:
                    old.message = f"✖ {exc}"
                return
            self.source = fresh

            def clear_log() -> None:
                for screen in self.screen_stack:
                    for log in screen.query(EventsPanel):
                        log.clear()

            if self._sim_thread_running:
                self.call_from_thread(clear_log)
            else:
                clear_log()

        if self._sim_thread_running:
            self._commands.put(command)
        else:
            command()
            self.show_frame()

    def action_save(self) -> None:
        # Saving checks the whole run first: seconds on a long one (90 s for a
        # double11 session in a trial), and it said nothing until done.
        assert isinstance(self.source, Session), "w is a live session's key (LIVE_ACTIONS)"
        events = self.source.history_len()
        self.notify(f"saving: every check judges the whole run first ({events:,} events)…")
        self._save()

    @work(thread=True, exclusive=True, group="save")
    def _save(self) -> None:
        session = self.source
        try:
            folder = session.save(self.store_root)
        except OSError as exc:
            self.call_from_thread(self.notify, f"save failed: {exc}", severity="error")
            return
        self.call_from_thread(
            self.notify, f"saved to {folder}\nreplay: {d11_command()} tui --attach {folder}"
        )
        self.call_from_thread(self.show_frame)

    # -- command palette -----------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            name, _, args = binding.action.partition("(")
            params = (args.rstrip(")").strip("'"),) if name == "chapter" else ()
            if self.check_action(name, params) is False or name in ("quit",):
                continue
            keys = binding.key_display or binding.key.split(",")[0]
            yield SystemCommand(
                f"{binding.description} [{keys}]",
                CHAPTER_HELP.get(binding.action) or _HELP.get(name, binding.description),
                lambda action=binding.action: self.run_action(action),
            )


_HELP = {
    "spike": "Start the Double 11 midnight spike now (100x the quiet level within a second)",
    "kill": "Crash the selected node (unsynced writes lost); r restarts it",
    "restart": "Restart the selected crashed node, or resume a paused one",
    "pause_node": "Freeze / thaw the selected node (messages and timers queue)",
    "skew": "Cycle the selected node's clock: +500 ms, -500 ms, exact",
    "cut": "Cut the selected node's city off from everything (its cell if one city)",
    "heal": "Restore every network link",
    "judge": "Stop traffic, heal, recover and take the final reads; then the checks decide",
    "traffic": "Steady traffic again from now",
    "speed": "Change simulation speed (x0.1 .. x100 of real time)",
    "toggle_sim": "Pause / resume the simulation",
    "play_sim": "Play the simulation (or the replay) from where it stands",
    "step": "Advance 100 ms of simulated time (pauses first)",
    "switch": "Switch chapter and scenario (rebuilds the run)",
    "save": "Save the run so far to a store folder (d11 tui --attach reads it)",
    "theme": "Switch between dark and light",
    "toggle_view": "Show the event log or the chapter's panel (both side by side from 140 columns)",
    "scrub": "Move the replay in time",
    "scrub_to": "Jump to the start / end of the replay",
}
