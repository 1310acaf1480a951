"""What a check is asked and what it answers: the learner's request (seeds, answer) and the
`Outcome` (pass or fail, a headline, the lines to act on), and which seeds a check runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from learn.catalog import Exercise

__all__ = ["CheckRequest", "Outcome", "seeds_to_run"]


@dataclass
class CheckRequest:
    """What the learner asked: how many seeds, and their answer if any."""

    seeds: int = 1
    answer: str | None = None
    truth_only: bool = False  # measure: return the reference figure (for `solution`)
    # The workspace as the learner reaches it from where they ran `d11 learn check`
    # ("d11-workshop", "."): the commands the feedback prints run from there.
    here: str = "."

    def on_your_code(self, command: str) -> str:
        """`command` (a `d11 run`/`d11 test`) as it runs the learner's copy, not the
        installed code: the workspace first on the path."""
        return f"PYTHONPATH={self.here} {command}"

    def in_workspace(self, relpath: str) -> str:
        """A path of the workspace as the learner names it from where they are."""
        return relpath if self.here == "." else f"{self.here}/{relpath}"


@dataclass
class Outcome:
    passed: bool
    headline: str
    lines: list[str] = field(default_factory=list)
    truth: str = ""  # measure/configure: the figure measured, for `solution`

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "headline": self.headline,
            "lines": self.lines,
            "truth": self.truth,
        }


def seeds_to_run(ex: Exercise, req: CheckRequest) -> list[int]:
    first: list[int] = list(ex.params.get("seeds", (1,)))
    extra = [s for s in range(1, 10_000) if s not in first]
    return (first + extra)[: max(req.seeds, len(first))]
