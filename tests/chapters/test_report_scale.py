"""The scale in one form wherever `d11 run` prints it (the newcomer's trial: "the
scale printed three ways"): the rates' "at scale 1/453", the headline's scale row
and the over-time table's caption all say 1/453; the caption said "x 453 for the
real rate they stand for"."""

from __future__ import annotations

import io
import re

from rich.console import Console

from chapters.report import render
from chapters.run import simulate


def test_the_report_gives_the_scale_as_one_fraction() -> None:
    summary = simulate("ch2", "steady", seed=1, duration_s=0.3).summary
    out = io.StringIO()
    render(summary, Console(file=out, width=400, no_color=True))
    text = out.getvalue()
    assert round(1 / summary["scale"]) == 453, summary["scale"]  # the default, 0.0022059
    said = re.findall(r"scale (\S+)", text)
    assert len(said) >= 5 and {w.rstrip(":") for w in said} == {"1/453"}, said
    assert "x 453" not in text and "0.0022" not in text, text
    caption = "simulated payments/s, at scale 1/453: one simulated payment per 453 real"
    assert caption in text, text
