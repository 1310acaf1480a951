"""A run saved from the live view replays exactly with `d11 replay` (exit 0).

The live view moves time 20 ms at a time and a person's keys land between
two slices; the save keeps the session's config and that script of keys
(`session.json`), and `d11 replay` runs the session again on the same seed.
Before, the replay ran the harness's own workload under the saved faults and
the digest could not match (exit 1), and the simulator's digest depended on
the slicing besides (`tests/platform/test_sim_slicing.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tui.cli import app
from tui.session import Session, SessionConfig


def live_ch4(seed: int) -> Session:
    s = Session(SessionConfig(chapter="ch4", seed=seed, speed=100.0))
    s.spike()
    while s.rt.now_ms < 800.0:
        s.step(20.0)  # the live view's slices
    s.cut_off(s.first_target())
    s.set_speed(-1)  # a note in the history, replayed too
    while s.rt.now_ms < 1_300.0:
        s.advance(0.013)  # and its uneven, wall-clock-sized ones
    s.heal()
    while s.rt.now_ms < 1_600.0:
        s.step(33.0)
    return s


def test_a_saved_live_session_replays_exactly_and_a_changed_script_is_refused(
    tmp_path: Path,
) -> None:
    session = live_ch4(seed=2)
    folder = session.save(tmp_path / "saved")
    script = json.loads((folder / "session.json").read_text())["script"]
    assert [e["do"] for e in script] == ["spike", "act", "mark", "act"]
    assert json.loads((folder / "test.json").read_text())["origin"] == "tui"
    replay = ["replay", str(folder), "--store", str(tmp_path / "again")]
    result = CliRunner().invoke(app, replay)
    assert result.exit_code == 0, result.output
    assert "reproduced: same digest, history and verdict" in result.output

    path = folder / "session.json"  # changed after the save: the manifest refuses it
    path.write_text(path.read_text().replace('"spike"', '"spiek"'))
    result = CliRunner().invoke(app, replay)
    assert result.exit_code == 2, result.output
    assert "session.json" in result.output


def test_a_saved_run_is_named_after_what_was_done_to_it(tmp_path: Path) -> None:
    """Trial: a save after m, o and [ was named `double11-all-payments-none`, "none"
    being the faults' place in the harness's name. What the person did goes there:
    the faults, the spike, the chapter's controls; "none" only when nothing was."""
    from tui.replay import Replay

    quiet = Session(SessionConfig(chapter="ch1", seed=1))
    quiet.step(300.0)
    assert quiet.save(tmp_path).parent.name == "ch1-monolith-payments-none"
    spiked = Session(SessionConfig(chapter="ch1", seed=1))
    spiked.spike()
    spiked.step(300.0)
    assert spiked.save(tmp_path).parent.name == "ch1-monolith-payments-spike"
    s = Session(SessionConfig(chapter="ch6", seed=1))
    s.step(300.0)
    s.chapter_action("tighten", "")
    s.chapter_action("tighten", "")
    s.kill(s.first_target())
    s.step(300.0)
    folder = s.save(tmp_path)
    assert folder.parent.name == "ch6-controls-payments-kill+tighten", folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ch1-monolith-payments-none", "ch1-monolith-payments-spike",
        "ch6-controls-payments-kill+tighten",
    ]  # fmt: skip
    assert Replay(folder).end_ms > 0, "attach reads it where it was moved"
    again = ["replay", str(folder), "--store", str(tmp_path / "again")]
    result = CliRunner().invoke(app, again)
    assert result.exit_code == 0, result.output
