"""Schedules and witnesses in words: what `d11 hunt` prints beside a failure."""

from __future__ import annotations

from checks.harness.describe import LINE_CHARS_MAX, describe_action, describe_witness
from checks.nemesis import Action


def test_each_action_reads_as_words() -> None:
    cases = [
        (Action(1.0, "crash", {"node": "shard-2"}), "crash shard-2"),
        (Action(1.0, "partition", {"groups": [["a", "b"], ["c"]], "one_way": True}),
         "partition a,b | c (one way)"),
        (Action(1.0, "cut", {"links": [["a", "b"], ["b", "a"]], "bridge": "g"}),
         "cut 2 links, g bridges them"),
        (Action(1.0, "skew", {"node": "s1", "skew_ms": 50.0, "drift_ppm": 100.0}),
         "clock of s1 +50 ms, drift 100 ppm"),
        (Action(1.0, "skew", {"node": "s1", "skew_ms": 0.0, "drift_ppm": 0.0}),
         "reset the clock of s1"),
        (Action(1.0, "net", {"loss": 0.2, "duplicate": 0.0, "reorder": 0.0}), "messages: loss 20%"),
        (Action(1.0, "isolate", {"target": "shanghai"}), "isolate shanghai"),
        (Action(1.0, "heal", {}), "heal every link"),
    ]  # fmt: skip
    for action, words in cases:
        assert describe_action(action) == words


def test_a_long_group_is_counted_not_listed() -> None:
    nodes = [f"node-{i}" for i in range(40)]
    text = describe_action(Action(0.0, "partition", {"groups": [nodes, ["x"]], "one_way": False}))
    assert "+34 more" in text and "node-39" not in text


def test_a_witness_is_a_few_whole_lines_never_raw_json_cut_mid_string() -> None:
    balances = {f"u{i}": 2_000_000 + i for i in range(500)}
    witness = [
        {"kind": "wrong-total", "index": 1733 + i, "time_ms": 3605.82, "process": 7,
         "message": "balances add up to 199860403, not 200000000 " + "(detail) " * 30,
         "balances": balances}
        for i in range(5)
    ]  # fmt: skip
    lines = describe_witness(witness)
    assert lines[0].startswith("wrong-total at event 1733, t=3,606 ms: balances add up to")
    assert lines[-1] == "... and 2 more" and len(lines) == 4
    for line in lines:
        assert len(line) <= LINE_CHARS_MAX and "{" not in line and '"' not in line
        assert line.endswith(("…", "more", ")")), line  # cut at a word, and marked as cut


def test_a_message_already_in_the_summary_is_not_repeated() -> None:
    witness = [{"kind": "lost", "index": 3, "message": "payment p1 lost"}]
    assert describe_witness(witness, "1 lost: payment p1 lost") == ["lost at event 3"]
    assert describe_witness(None) == [] and describe_witness([]) == []
    assert describe_witness({"kind": "cycle", "length": 3}) == ["cycle: length=3"]
