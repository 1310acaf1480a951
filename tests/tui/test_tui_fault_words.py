"""What the event line says when a cut takes the failover controller's city."""

from __future__ import annotations

from tui.fault_words import control_plane_cut_words


def test_a_lone_controller_cut_off_is_said_to_fail_the_others_over() -> None:
    """Seen in `d11 tui ch4`: "no failover for its own cells while it is cut off",
    while the cut-off controller failed the healthy sz-1 over 0.4 s after the cut."""
    line = control_plane_cut_words("hangzhou", ["failover"], [], ["shanghai"])
    assert line.startswith("hangzhou holds the failover controller (failover)"), line
    assert "fails over those whose standby is in hangzhou, healthy as they are" in line
    assert "book ch8, Witnesses" in line
    assert "Nothing fails hangzhou's own cells over" in line
    assert line.endswith("after h heals the cut (the crash scenario loses shanghai instead)")


def test_the_capstones_standby_controller_is_named() -> None:
    line = control_plane_cut_words(
        "hangzhou", ["failover"], ["failover-2 in shanghai"], ["shanghai"]
    )
    assert "the standby outside the cut (failover-2 in shanghai)" in line
    assert "no failover" not in line and "after h heals" not in line
