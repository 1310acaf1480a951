"""A key the live view refuses (it does not apply to the selected node) is not
part of the saved session, and a session saved before that was fixed, which
holds one, still replays.

Before: `d11 tui ch6`, `f` on the database (flip needs a best-effort
dependency: refused), then `w`: `d11 replay` of the folder stopped at that
key, refused again, with "not a saved session" (exit 2). Found by a
newcomer's trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui.cli import app
from tui.session import Session, SessionConfig, SessionError


def test_a_refused_key_is_left_out_of_the_save_and_an_old_save_with_one_replays(
    tmp_path: Path,
) -> None:
    s = Session(SessionConfig(chapter="ch6", seed=1))
    s.step(400.0)
    with pytest.raises(SessionError, match="best-effort"):
        s.chapter_action("flip", "paydb")
    assert s.script == []
    s.step(200.0)
    folder = s.save(tmp_path / "saved")
    replay = ["replay", str(folder), "--store", str(tmp_path / "again")]
    result = CliRunner().invoke(app, replay)
    assert result.exit_code == 0, result.output

    # As saved before the fix: the refused key in the script.
    old = Session(SessionConfig(chapter="ch6", seed=1))
    old.step(400.0)
    old.script.append({"at_ms": 400.0, "do": "chapter_action", "args": ["flip", "paydb"]})
    old.step(200.0)
    folder = old.save(tmp_path / "old")
    result = CliRunner().invoke(app, ["replay", str(folder), "--store", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "reproduced" in result.output
