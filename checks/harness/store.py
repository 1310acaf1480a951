"""Store folders: one per run, everything needed to read, judge and replay it.

    store/<test name>/<timestamp>/
        test.json       the spec, the backend, the digest, the overall verdict
        schedule.json   the nemesis schedule, exactly as run (replayable)
        history.jsonl   the history (Jepsen-style events, nemesis included)
        verdicts.json   every checker's verdict and its judgement
        nodes/<id>.log  each node's trace events
        report.html     timeline of operations and faults, throughput, latency
        junit.xml       on request, for CI

`d11 replay FOLDER` reads test.json and schedule.json and runs it again;
`load_store` checks that a folder is whole before anything trusts it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.harness.runner import HarnessError, TestResult, TestSpec
from checks.history import Event, HistoryError, read_jsonl, write_jsonl
from checks.nemesis import Schedule, ScheduleError

__all__ = ["StoredRun", "load_store", "write_store"]

STORE_ROOT = Path("store")


def write_store(result: TestResult, root: Path = STORE_ROOT, *, html: bool = True) -> Path:
    """Write `result` to a new folder under `root`; returns the folder."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = root / result.spec.name
    folder = base / f"{stamp}-s{result.spec.seed}"
    n = 1
    while folder.exists():  # two runs in one second: never overwrite
        n += 1
        folder = base / f"{stamp}-s{result.spec.seed}-{n}"
    (folder / "nodes").mkdir(parents=True)
    test = {
        "spec": result.spec.to_json(),
        "valid": result.valid,
        "digest": result.digest,
        "end_ms": result.end_ms,
        "exit_code": result.exit_code,
        "summary": _figures(result.summary),
    }
    (folder / "test.json").write_text(json.dumps(test, indent=2, default=str) + "\n")
    result.schedule.save(folder / "schedule.json")
    write_jsonl(folder / "history.jsonl", result.history)
    verdicts = {
        name: {
            **verdict.to_json(),
            "outcome": result.judged[name].outcome if name in result.judged else None,
            "expected": _expected(result, name),
        }
        for name, verdict in result.verdicts.items()
    }
    (folder / "verdicts.json").write_text(json.dumps(verdicts, indent=2, default=str) + "\n")
    for node, lines in result.node_logs.items():
        (folder / "nodes" / f"{_safe(node)}.log").write_text("\n".join(lines) + "\n")
    if html:
        from checks.harness.report import write_report

        write_report(result, folder / "report.html")
    return folder


def _expected(result: TestResult, name: str) -> dict[str, Any] | None:
    judged = result.judged.get(name)
    if judged is None or judged.expected is None:
        return None
    return {"valid": judged.expected.valid, "why": judged.expected.why}


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a stage summary (the series stay in the report)."""
    keys = ("offered_tps", "goodput_tps", "p50_ms", "p99_ms", "p999_ms", "error_rate")
    return {k: summary[k] for k in keys if k in summary}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) or "node"


@dataclass(frozen=True)
class StoredRun:
    """A store folder, read back and checked whole."""

    folder: Path
    spec: TestSpec
    schedule: Schedule
    history: list[Event]
    digest: str
    valid: Any
    verdicts: dict[str, Any]


def load_store(folder: Path) -> StoredRun:
    """Read a store folder; HarnessError naming the file and the problem if it is not whole."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"{folder}: no such store folder")
    test = _read_json(folder / "test.json")
    if not isinstance(test, dict) or "spec" not in test:
        raise HarnessError(f"{folder / 'test.json'}: not a test record (no 'spec')")
    spec = TestSpec.from_json(test["spec"])
    try:
        schedule = Schedule.load(folder / "schedule.json")
    except ScheduleError as exc:
        raise HarnessError(str(exc)) from None
    try:
        history = read_jsonl(folder / "history.jsonl")
    except HistoryError as exc:
        raise HarnessError(f"corrupt history: {exc}") from None
    except OSError as exc:
        raise HarnessError(f"{folder / 'history.jsonl'}: cannot read: {exc.strerror}") from None
    verdicts = _read_json(folder / "verdicts.json")
    return StoredRun(
        folder, spec, schedule, history, str(test.get("digest", "")), test.get("valid"), verdicts
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: not valid JSON: {exc}") from None
