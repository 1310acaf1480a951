"""Fixed moments of fixed runs: the screens the book shows and the snapshot tests pin.

Each scene builds the app at a fixed seed, advances a fixed amount of
simulated time with the worker off (`autorun=False`), and presses keys, so
the frame is the same on every machine: no wall-clock text is on screen.

    python -m tui.scenes book/docs/img     # the book's SVG screenshots
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui.app import D11App
from tui.session import Session, SessionConfig

__all__ = ["SCENES", "SIZE", "Scene", "export"]

SIZE = (160, 45)


@dataclass(frozen=True)
class Scene:
    name: str
    caption: str
    make: Callable[[], D11App]
    keys: tuple[str, ...] = ()
    theme: str = "textual-dark"


def _live(
    chapter: str = "ch1", scenario: str = "steady", seed: int = 1, *steps: tuple[str, float]
) -> D11App:
    """A session advanced through `steps`: (control name or "", then simulated ms to run)."""
    session = Session(SessionConfig(chapter=chapter, scenario=scenario, seed=seed))
    for control, run_ms in steps:
        if control:
            getattr(session, control)(*(["monolith"] if control in ("kill", "restart") else []))
        session.step(run_ms)
    session.run_checks()
    return D11App(session, autorun=False)


def _steady() -> D11App:
    return _live("ch1", "steady", 1, ("", 22_000.0))


def _spike() -> D11App:
    return _live("ch1", "steady", 1, ("", 16_000.0), ("spike", 5_000.0))


def _crash() -> D11App:
    return _live("ch1", "steady", 1, ("", 14_000.0), ("kill", 1_500.0), ("restart", 5_000.0))


def _cells_cut() -> D11App:
    """Chapter 3: hangzhou cut off, its cells fail over, the final reads find payments lost."""
    session = Session(SessionConfig(chapter="ch3", scenario="steady", seed=1))
    session.step(4_000.0)
    session.cut_off("db-rz0")
    session.step(3_000.0)
    session.heal()
    session.step(500.0)
    done_ms = session.judge()
    session.step(done_ms - session.rt.now_ms + 200.0)
    session.run_checks()
    return D11App(session, autorun=False)


def _chapter(chapter: str, *steps: tuple[str, str, float], checks: bool = True) -> D11App:
    """A chapter 5-7 session through `steps`: (chapter key action or "spike" or "", the node
    it acts on, then simulated ms to run); the checks judged at the end if `checks`."""
    session = Session(SessionConfig(chapter=chapter, scenario="steady", seed=1))
    for action, node, run_ms in steps:
        if action == "spike":
            session.spike()
        elif action:
            session.chapter_action(action, node)
        if run_ms:
            session.step(run_ms)
    if checks:
        session.run_checks()
    return D11App(session, autorun=False)


def _queues() -> D11App:
    """Chapter 5: the settlement group stalled (l), then a producer killed mid-transaction (x)."""
    return _chapter(
        "ch5", ("", "", 2_000.0), ("stall", "settlement-hz", 1_500.0),
        ("kill-producer", "pay-sh", 500.0),
        # Not judged: chapter 5's delivery checks read a live history as if it had ended
        # (messages committed and not yet consumed count as lost); the panel is the point.
        checks=False,
    )  # fmt: skip


def _controls() -> D11App:
    """Chapter 6 at midnight: loyalty (the plan had turned it OFF) on by hand (f), notify
    slowed (d), the rule tightened."""
    return _chapter(
        "ch6", ("", "", 1_500.0), ("spike", "", 2_000.0), ("flip", "loyalty", 0.0),
        ("slow", "notify", 0.0), ("tighten", "", 2_000.0),
    )  # fmt: skip


def _rehearsal() -> D11App:
    """Chapter 7: load-test traffic beside production, then the kill switch (o)."""
    return _chapter("ch7", ("", "", 2_000.0), ("kill-switch", "", 1_200.0))


def _night() -> D11App:
    """The capstone: settlement stalled (l), loyalty off (f), the load test stopped (o)."""
    return _chapter(
        "double11", ("", "", 2_000.0), ("stall", "settlement-hz", 0.0), ("flip", "loyalty", 0.0),
        ("kill-switch", "", 1_500.0),
    )  # fmt: skip


def _replay() -> D11App:
    import shutil
    import tempfile

    from checks.harness.runner import TestSpec, run_test
    from checks.harness.store import write_store
    from tui.replay import Replay

    folder = Path(tempfile.mkdtemp(prefix="d11-scene-"))
    result = run_test(TestSpec(chapter="ch1", nemeses=("kill",), time_s=3.0, seed=3))
    stored = write_store(result, folder, html=False)
    replay = Replay(stored)  # reads everything: the folder can go
    shutil.rmtree(folder, ignore_errors=True)
    crash_ms = next(e.time_ms for e in replay.history if e.process == "nemesis" and e.f == "crash")
    replay.scrub_to(crash_ms + 400.0)
    replay.message = "replaying a `d11 test` store folder: ← → move 1 s, shift 10 s, space plays"
    return D11App(replay, autorun=False)


SCENES: dict[str, Scene] = {
    s.name: s
    for s in (
        Scene(
            "tui-steady", "Chapter 1 under steady load: the monolith serves every payment.", _steady
        ),
        Scene(
            "tui-spike",
            "Midnight (m): offered load far above what one store serves; goodput collapses.",
            _spike,
        ),
        Scene("tui-crash", "The monolith killed (k) and restarted (r): a total outage.", _crash),
        Scene("tui-light", "The light theme (t).", _steady, theme="textual-light"),
        Scene(
            "tui-cells-cut",
            "Chapter 3: a city cut off, its cells failed over, acknowledged payments lost.",
            _cells_cut,
        ),
        Scene(
            "tui-attach", "`d11 tui --attach`: a stored run at the moment of its crash.", _replay
        ),
        Scene(
            "tui-queues",
            "Chapter 5: the settlement group stalled (l), a producer killed mid-transaction (x).",
            _queues,
        ),
        Scene(
            "tui-controls",
            "Chapter 6 at midnight: a switch flipped (f), a dependency slowed (d), the rule "
            "tightened ([).",
            _controls,
        ),
        Scene("tui-rehearsal", "Chapter 7: the load test's kill switch (o).", _rehearsal),
        Scene(
            "tui-night",
            "The capstone (d11 tui double11): chapters 5-7's panels in brief, their keys on it.",
            _night,
        ),
    )
}


async def _export_one(scene: Scene, out_dir: Path) -> Path:
    app = scene.make()
    async with app.run_test(size=SIZE) as pilot:
        app.theme = scene.theme
        await pilot.pause()
        if scene.keys:
            await pilot.press(*scene.keys)
        app.show_frame()
        await pilot.pause()
        path = app.save_screenshot(filename=f"{scene.name}.svg", path=str(out_dir))
    return Path(path)


def export(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Write each scene's SVG screenshot (exported by the app itself) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [SCENES[n] for n in (names or list(SCENES))]
    return [asyncio.run(_export_one(scene, out_dir)) for scene in chosen]


if __name__ == "__main__":
    from chapters import get_stage
    from checks.harness.contract import use_stages

    use_stages(get_stage)  # this program's top: the harness runs the chapters' stages
    for written in export(Path(sys.argv[1] if len(sys.argv) > 1 else "book/docs/img")):
        print(written)
