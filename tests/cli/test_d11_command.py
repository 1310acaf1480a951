"""The commands a run prints to copy (`replay: d11 replay FOLDER`) work as printed:
a bare `d11` only where `d11` is on PATH, else the path of the one that ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference.cli_options import d11_command


def _script(folder: Path) -> Path:
    folder.mkdir(parents=True)
    script = folder / "d11"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def test_bare_d11_only_when_it_is_the_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / ".venv" / "bin")
    monkeypatch.chdir(tmp_path)
    assert d11_command(str(script), path_env=str(script.parent)) == "d11"
    assert d11_command(str(script), path_env="/nonexistent") == ".venv/bin/d11"
    other = _script(tmp_path / "elsewhere")  # another d11 first on PATH: not this one
    assert d11_command(str(script), path_env=str(other.parent)) == ".venv/bin/d11"
    monkeypatch.chdir(other.parent)  # outside the folder holding it: its absolute path
    assert d11_command(str(script), path_env="/nonexistent") == str(script)


def test_a_run_prints_a_replay_command_that_runs(tmp_path: Path) -> None:
    """With the venv not activated, `replay:` names the venv's d11, not a bare d11."""
    d11 = Path(sys.executable).parent / "d11"
    if not d11.is_file():
        pytest.skip("no d11 script beside this Python")
    env = {**os.environ, "PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(d11), "run", "ch1", "--duration-s", "0.5", "--store", "run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split(":", 1)[0]: line for line in done.stdout.splitlines() if ": " in line}
    replay = lines["replay"].split()
    watch = lines["watch"].split()
    assert replay[1] == str(d11) and watch[1] == str(d11), (replay, watch)
    assert replay[2:] == ["replay", "run"] and watch[2:] == ["tui", "--attach", "run"]
