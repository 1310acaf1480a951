"""The `d11 run` report's panel title is never cut: at 80 columns the run's settings
move to the panel's bottom edge (before, "· 4 shards" came out as "· 4 s")."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from chapters.report import render
from chapters.run import simulate


@pytest.fixture(scope="module")
def sharded() -> dict:
    return simulate("ch2", "steady", seed=1, duration_s=0.3).summary


def lines_at(summary: dict, width: int) -> list[str]:
    out = io.StringIO()
    render(summary, Console(file=out, width=width, no_color=True))
    return out.getvalue().splitlines()


def test_at_80_columns_the_settings_go_to_the_bottom_edge_whole(sharded: dict) -> None:
    lines = lines_at(sharded, 80)
    assert lines[0].startswith("╭─ ch2 · Sharding by user id ─")
    bottom = next(line for line in lines if line.startswith("╰─ "))
    assert bottom.startswith("╰─ scenario steady · variant tcc · seed 1 · 4 shards ─")
    assert all(len(line) <= 80 for line in lines)


def test_a_wide_terminal_keeps_the_title_on_one_line(sharded: dict) -> None:
    lines = lines_at(sharded, 200)
    assert lines[0].startswith(
        "╭─ ch2 · Sharding by user id · scenario steady · variant tcc · seed 1 · 4 shards ─"
    )
