"""A folder that is not a run folder is named as such, not as "Is a directory"
(`d11 check lin DIR` on a plain folder; a newcomer's trial)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui.cli import app


@pytest.mark.parametrize("checker", ["lin", "ledger", "delivery"])
def test_a_folder_without_a_history_is_refused_saying_so(tmp_path: Path, checker: str) -> None:
    out = CliRunner().invoke(app, ["check", checker, str(tmp_path)])
    assert out.exit_code == 2, out.output
    assert "a folder with no history.jsonl in it" in out.output
