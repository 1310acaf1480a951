"""The type ratchet: `Any` uses and `type: ignore` comments never rise above their baseline.

mypy's own error count is held the same way, by `tools/typecheck.py` as its
own step in `.ci/run` (a cold mypy run takes too long for the default suite).
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import warnings
from pathlib import Path

import pytest

from tools import typecheck
from tools.typecheck import Counts

ROOT = Path(__file__).resolve().parents[2]
WHERE_HINT = ".venv/bin/python tools/typecheck.py --since HEAD"


def test_any_and_type_ignore_do_not_rise_above_the_baseline() -> None:
    now = typecheck.count_sources()
    rose, fell = typecheck.compare(now, typecheck.read_baseline())
    assert rose == [], "fix the new ones (the baseline only falls); where: " + WHERE_HINT
    if fell:
        warnings.warn(f"{'; '.join(fell)}: record it with {typecheck.UPDATE_HINT}", stacklevel=1)


def test_code_is_counted_not_text() -> None:
    source = (
        "from typing import Any\n"
        "import typing\n"
        "def f(x: Any, y: typing.Any) -> dict[str, Any]:  # Any in a comment\n"
        '    """Any in a docstring."""\n'
        "    return {'# type: ignore': x}  # type: ignore[return-value]\n"
        "z = f(1, 2)  # type:ignore\n"
    )
    assert typecheck.any_uses(source) == 3
    assert typecheck.type_ignores(source) == 2


def test_mypy_summary_is_read_and_a_missing_one_is_an_error() -> None:
    assert typecheck.mypy_error_count("a.py:1: error: x  [misc]\nFound 1 error in 1 file\n") == 1
    summary = "Found 263 errors in 76 files (checked 257 source files)"
    assert typecheck.mypy_error_count(summary) == 263
    assert typecheck.mypy_error_count("Success: no issues found in 257 source files\n") == 0
    with pytest.raises(RuntimeError, match="no summary"):
        typecheck.mypy_error_count("mypy: error: unrecognized arguments\n")


def test_a_rise_fails_and_a_fall_is_recorded_only_downwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "type_baseline.json"
    baseline.write_text(json.dumps({"mypy_errors": 10, "any_uses": 100, "type_ignores": 5}))
    monkeypatch.setattr(typecheck, "BASELINE", baseline)

    monkeypatch.setattr(typecheck, "count_sources", lambda: Counts(None, 101, 4))
    assert typecheck.main(["--no-mypy", "--update"]) == 1  # Any rose: nothing is recorded
    assert "any_uses: 101, above the baseline of 100" in capsys.readouterr().err
    assert json.loads(baseline.read_text())["type_ignores"] == 5

    monkeypatch.setattr(typecheck, "count_sources", lambda: Counts(None, 90, 5))
    assert typecheck.main(["--no-mypy"]) == 0
    assert typecheck.UPDATE_HINT in capsys.readouterr().out
    assert typecheck.main(["--no-mypy", "--update"]) == 0
    assert json.loads(baseline.read_text()) == {
        "mypy_errors": 10,  # not measured, so kept
        "any_uses": 90,
        "type_ignores": 5,
    }


def test_mypy_checks_the_floors_the_ratchet_counts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert tuple(config["tool"]["mypy"]["files"]) == typecheck.FOLDERS
    assert "mypy" in " ".join(config["project"]["optional-dependencies"]["dev"])
    assert "tools/typecheck.py" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_where_a_count_rose_is_named_per_file(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    (tmp_path / "checks").mkdir()
    kept, grown = tmp_path / "checks" / "kept.py", tmp_path / "checks" / "grown.py"
    kept.write_text("from typing import Any\nx: Any = 1\n")
    grown.write_text("y = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    grown.write_text("from typing import Any\ny: Any = 1  # type: ignore[misc]\n")
    (tmp_path / "checks" / "new.py").write_text("from typing import Any\nz: Any = 1\n")
    assert typecheck.rises_since("HEAD", root=tmp_path) == [
        "checks/grown.py: Any 0 -> 1",
        "checks/grown.py: type: ignore 0 -> 1",
        "checks/new.py: Any 0 -> 1",
    ]
