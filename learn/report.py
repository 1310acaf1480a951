"""`d11 learn report FOLDER`: who passed what, from a folder of learners' workspaces.

Each learner hands in their workspace folder (or just its `.d11-learn.json`);
the instructor puts them side by side in one folder. A learner is a
sub-folder holding a state file (or the folder itself, for one learner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from learn.catalog import next_up
from learn.workspace import STATE_FILE, LearnError

__all__ = ["LearnerRow", "gather", "render"]

LEARNERS_MAX = 1000  # a bound on the folder walk


@dataclass
class LearnerRow:
    learner: str
    passed: list[str]
    current: str
    attempts: int
    problem: str = ""  # an unreadable state file is reported, not fatal
    tries: dict[str, int] = field(default_factory=dict)  # checks run, per exercise


def gather(folder: Path) -> list[LearnerRow]:
    if not folder.is_dir():
        raise LearnError(f"{folder} is not a folder")
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    rows: list[LearnerRow] = []
    for path in candidates[: LEARNERS_MAX + 1]:
        state_path = path / STATE_FILE
        if not state_path.exists():
            continue
        name = path.name if path != folder else folder.resolve().name
        try:
            state = json.loads(state_path.read_text())
            passed = sorted(state.get("passed", {}))
            tries = {str(ex): int(n) for ex, n in state.get("attempts", {}).items()}
            current = str(state.get("current", ""))
            rows.append(LearnerRow(name, passed, current, sum(tries.values()), tries=tries))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            rows.append(LearnerRow(name, [], "", 0, f"unreadable state file: {exc}"))
    if not rows:
        raise LearnError(f"no learner workspaces ({STATE_FILE}) in {folder} or its sub-folders")
    return rows


def render(rows: list[LearnerRow], order: list[str], *, json_out: bool = False) -> list[str]:
    if json_out:
        data = {
            "learners": [
                {
                    "learner": r.learner,
                    "passed": r.passed,
                    "current": r.current,
                    "next": (next_up(order, r.passed, r.current) or ("",))[0],
                    "checks": r.attempts,
                    "problem": r.problem,
                }
                for r in rows
            ],
            "passed_by": {ex: sum(ex in r.passed for r in rows) for ex in order},
        }
        return [json.dumps(data, indent=2)]
    width = max(8, *(len(r.learner) for r in rows))
    lines = [f"{'learner':{width}}  done  checks  now (checks on it) / next: not started"]
    for r in rows:
        if r.problem:
            lines.append(f"{r.learner:{width}}  {r.problem}")
            continue
        nxt = next_up(order, r.passed, r.current)  # as the learner's `d11 learn status`
        if nxt is None:
            now = "all done"
        elif nxt[1]:
            now = nxt[0] + (f" ({r.tries[nxt[0]]})" if r.tries.get(nxt[0]) else "")
        else:
            now = f"next: {nxt[0]}"
        lines.append(
            f"{r.learner:{width}}  {len(r.passed):2}/{len(order):<2} {r.attempts:6}  {now}"
        )
    lines.append("")
    lines.append("passed, by exercise:")
    for ex in order:
        count = sum(ex in r.passed for r in rows)
        lines.append(f"  {ex:22} {count}/{len(rows)}")
    return lines
