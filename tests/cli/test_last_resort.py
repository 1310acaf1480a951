"""The CLI's last resort: an error no command foresaw is one line and exit 2,
with the hint that --debug (or D11_DEBUG=1) shows the traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import checks.lin.detect
import tui.cli


def history(tmp_path: Path) -> Path:
    path = tmp_path / "h.jsonl"
    events = [
        {"type": "invoke", "process": 0, "f": "write", "value": 1},
        {"type": "ok", "process": 0, "f": "write", "value": 1},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def a_bug(*_: object) -> None:
    raise RuntimeError("something no one foresaw\nsecond line")


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(checks.lin.detect, "detect_model", a_bug)
    monkeypatch.setattr(tui.cli, "_debug_flag", False)
    monkeypatch.delenv(tui.cli.DEBUG_ENV, raising=False)
    return history(tmp_path)


def run_main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["d11", *argv])
    with pytest.raises(SystemExit) as stop:
        tui.cli.main()
    return int(stop.value.code or 0)


def test_unexpected_error_is_one_line_and_exit_2(
    buggy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "check", "lin", str(buggy)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unexpected RuntimeError: something no one foresaw" in err
    assert "--debug" in err and "D11_DEBUG=1" in err and "Traceback" not in err


def test_debug_shows_the_traceback(buggy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["d11", "--debug", "check", "lin", str(buggy)])
    with pytest.raises(RuntimeError, match="no one foresaw"):
        tui.cli.main()
    monkeypatch.setattr(tui.cli, "_debug_flag", False)
    monkeypatch.setenv(tui.cli.DEBUG_ENV, "1")
    monkeypatch.setattr(sys, "argv", ["d11", "check", "lin", str(buggy)])
    with pytest.raises(RuntimeError, match="no one foresaw"):
        tui.cli.main()


def test_exits_pass_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tui.cli, "_debug_flag", False)
    path = history(tmp_path)
    assert run_main(monkeypatch, "check", "lin", str(path)) == 0  # linearizable
    assert run_main(monkeypatch, "check", "lin", str(tmp_path / "missing.jsonl")) == 2
    assert run_main(monkeypatch, "--help") == 0


def test_ctrl_c_is_not_reported_as_a_bug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(checks.lin.detect, "detect_model", interrupted)
    monkeypatch.setattr(tui.cli, "_debug_flag", False)
    code = run_main(monkeypatch, "check", "lin", str(history(tmp_path)))
    assert code != 2 and "unexpected" not in capsys.readouterr().err
