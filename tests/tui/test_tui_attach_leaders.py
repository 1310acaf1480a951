"""`d11 tui --attach`: the leaders the live view marked, and a footer that says what
space does.

Trial: attached to a saved chapter 5 run, the topology showed no ★ (the live
view had marked each broker group's leader), and the hint said "space plays"
while the footer said "space pause sim". The history holds no leaders; the
store's node logs hold the trace the live view reads them from.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from checks.harness.store import write_manifest
from tests.tui.test_tui_app import SIZE, aio, text_of
from tui.app import D11App
from tui.replay import Replay
from tui.widgets import TopologyPanel

LOG = """\
     100.000 paxos.campaign ballot=(1, 'monolith')
     180.445 paxos.leader ballot=(1, 'monolith') commit_index=0 top=0
     900.000 crash
    1200.000 leader group=payments/0 leader=monolith
"""


def with_log(stored_run: Path, tmp_path: Path) -> Path:
    """A copy of the stored run whose monolith traced leading, losing it, leading again."""
    folder = tmp_path / "run"
    shutil.copytree(stored_run, folder)
    (folder / "nodes").mkdir(exist_ok=True)
    (folder / "nodes" / "monolith.log").write_text(LOG)
    (folder / "manifest.json").unlink()
    write_manifest(folder)
    return folder


def test_a_replay_marks_who_led_at_its_cursor(stored_run: Path, tmp_path: Path) -> None:
    replay = Replay(with_log(stored_run, tmp_path))
    led = {}
    for at_ms in (150.0, 200.0, 950.0, 1_300.0, 0.0):
        replay.scrub_to(at_ms)
        led[at_ms] = {n.id for n in replay.frame().nodes if n.leader}
    assert led == {150.0: set(), 200.0: {"monolith"}, 950.0: set(), 1_300.0: {"monolith"},
                   0.0: set()}  # fmt: skip


def test_a_run_stored_without_node_logs_replays_with_no_leaders(
    stored_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bare"
    shutil.copytree(stored_run, folder)
    shutil.rmtree(folder / "nodes", ignore_errors=True)
    (folder / "manifest.json").unlink()
    write_manifest(folder)
    replay = Replay(folder)
    replay.scrub_to(-1.0)
    assert not [n.id for n in replay.frame().nodes if n.leader]


@aio
async def test_attached_the_topology_shows_leaders_and_the_footer_what_space_does(
    stored_run: Path, tmp_path: Path
) -> None:
    replay = Replay(with_log(stored_run, tmp_path))
    replay.scrub_to(500.0)
    app = D11App(replay, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        app.show_frame()
        await pilot.pause()
        assert "★" in text_of(app, TopologyPanel).split("★ leader")[0]
        assert "space plays" in replay.message
        keys = {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}
        assert keys["space"] == "play", keys  # the replay starts still
        await pilot.press("space")
        app.show_frame()
        await pilot.pause()
        assert not replay.paused
        keys = {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}
        assert keys["space"] == "pause sim", keys
        await pilot.press("space")
        assert replay.paused, "the other binding pauses it again"
