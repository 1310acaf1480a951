"""`--set NAME=VALUE`: a stage's own knobs from the command line, checked one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chapters import get_stage
from checks.harness.contract import Setting, StageError, parse_settings
from tui.cli import app

KNOBS = {
    "gateways": Setting("gateways", int, low=1, high=16),
    "cluster": Setting("mode", choices=("local", "leases")),
    "share": Setting("share", float, low=0, high=1),
}


def test_settings_parse_to_their_kinds() -> None:
    pairs = ["gateways=3", "cluster=leases", "share= 0.25"]
    assert parse_settings("ch6", KNOBS, pairs) == {
        "gateways": 3,
        "cluster": "leases",
        "share": 0.25,
    }


@pytest.mark.parametrize(
    ("pair", "says"),
    [
        ("gatways=3", "ch6 has no setting 'gatways' (known: cluster, gateways, share)"),
        ("gateways", "--set takes NAME=VALUE, not 'gateways'"),
        ("=3", "--set takes NAME=VALUE"),
        ("gateways=three", "--set gateways: expected a whole number, not 'three'"),
        ("gateways=0", "--set gateways: at least 1, not 0"),
        ("share=2", "--set share: at most 1, not 2"),
        ("cluster=token", "--set cluster: one of local | leases, not 'token'"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_what_is_wrong(pair: str, says: str) -> None:
    with pytest.raises(StageError) as caught:
        parse_settings("ch6", KNOBS, [pair])
    assert str(caught.value).startswith(says)


def test_a_stage_without_settings_says_so() -> None:
    with pytest.raises(StageError, match="ch1 has no settings"):
        parse_settings("ch1", get_stage("ch1").settings, ["x=1"])


def test_every_declared_setting_is_read_by_its_stage() -> None:
    """A declared knob the stage never reads would be set and silently ignored."""
    root = Path(__file__).resolve().parents[2] / "chapters"
    for chapter in ("ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "ch7", "double11"):
        stage = get_stage(chapter)
        folder = root / type(stage).__module__.split(".")[1]
        source = "\n".join(p.read_text() for p in folder.glob("*.py"))
        for name in stage.settings:
            assert f'"{name}"' in source.replace(f'"{name}": Setting', ""), (chapter, name)


def test_run_set_reaches_the_stage_and_a_typo_exits_2(tmp_path: Path) -> None:
    args = ["run", "ch6", "--scenario", "steady", "--duration-s", "1"]
    folder = tmp_path / "run"
    ok = CliRunner().invoke(app, [*args, "--set", "gateways=2", "--store", str(folder)])
    assert ok.exit_code == 0, ok.output
    spec = json.loads((folder / "test.json").read_text())["spec"]
    assert spec["extra"] == {"gateways": 2}  # so `d11 replay` of the folder sets it again
    bad = CliRunner().invoke(app, [*args, "--no-store", "--set", "gatways=2"])
    assert bad.exit_code == 2
    assert "ch6 has no setting 'gatways'" in bad.output


def test_test_set_reaches_the_spec(tmp_path: Path) -> None:
    bad = CliRunner().invoke(
        app, ["test", "ch6", "--set", "cluster=nope", "--store", str(tmp_path)]
    )
    assert bad.exit_code == 2
    assert "--set cluster: one of" in bad.output
