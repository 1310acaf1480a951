"""`d11 test` says when an unknown is the chapter's own expectation (chapter 6
without its controls leaves the bank unjudged), as `d11 run` labels it
EXPECTED UNKNOWN; any other unknown stays a plain "unknown" (the trial's F7)."""

from __future__ import annotations

from checks.harness.cli import _outcome_words
from checks.harness.contract import Expectation, Judgement
from checks.harness.report import _EXPECTED_WORDS


def test_an_unknown_the_chapter_expects_is_said_to_be_expected() -> None:
    expected = Expectation("unknown", "no complete read while overloaded")
    assert _outcome_words(Judgement("bank", "unknown", expected, "unknown")) == "expected unknown"


def test_an_unknown_the_chapter_does_not_expect_stays_plain() -> None:
    must_hold = Expectation(True, "the bank balances")
    assert _outcome_words(Judgement("bank", "unknown", must_hold, "unknown")) == "unknown"
    assert _outcome_words(Judgement("bank", "unknown", None, "unknown")) == "unknown"
    assert _outcome_words(Judgement("slo", False, None, "expected-failure")) == "expected-failure"
    assert _outcome_words(None) == ""


def test_the_html_report_words_an_expected_unknown() -> None:
    assert _EXPECTED_WORDS.get("unknown", "may fail") == "expected unknown"
