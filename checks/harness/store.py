"""Store folders: one per run, everything needed to read, judge and replay it.

    store/<test name>/<timestamp>/
        test.json       the spec, the backend, the digest, the overall verdict
        schedule.json   the nemesis schedule, exactly as run (replayable)
        history.jsonl   the history (Jepsen-style events, nemesis included)
        verdicts.json   every checker's verdict and its judgement
        nodes/<id>.log  each node's trace events
        report.html     timeline of operations and faults, throughput, latency
        manifest.json   the sha256 of every file above, written last

`d11 run` writes the same files (and summary.json, plots) to its run folder,
so `d11 replay` and `d11 tui --attach` read both kinds.

`d11 replay FOLDER` reads test.json and schedule.json and runs it again;
`load_store` checks that a folder is whole before anything trusts it: every
file the manifest lists is there with the content it was written with, and
test.json and schedule.json describe a run the stage can make.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.harness.runner import HarnessError, TestResult, TestSpec
from checks.history import Event, HistoryError, read_jsonl, write_jsonl
from checks.nemesis import Schedule
from reference.sim.kernel import fewer_collections

__all__ = [
    "MANIFEST",
    "StoredRun",
    "latest_run",
    "load_store",
    "run_record",
    "verify_manifest",
    "writable_file_problem",
    "writable_folder_problem",
    "write_manifest",
    "write_store",
]

STORE_ROOT = Path("store")


def write_store(result: TestResult, root: Path = STORE_ROOT, *, html: bool = True) -> Path:
    """Write `result` to a new folder under `root`; returns the folder."""
    # The run's objects were frozen while it ran (runner) and are not any
    # more: the first full collection walks them all (a million for a minute
    # of chapter 4, about a second) and finds no garbage. Writing the folder
    # (the report's plots, the JSON) would set it off; with the collector's
    # thresholds raised meanwhile, it is left to whenever the process next
    # needs it, if ever (d11 test ends here).
    with fewer_collections():
        return _write_folder(result, root, html)


def _write_folder(result: TestResult, root: Path, html: bool) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = root / result.spec.name
    folder = base / f"{stamp}-s{result.spec.seed}"
    n = 1
    while folder.exists():  # two runs in one second: never overwrite
        n += 1
        folder = base / f"{stamp}-s{result.spec.seed}-{n}"
    (folder / "nodes").mkdir(parents=True)
    test = run_record(result.spec, result.valid, result.digest, result.end_ms, result.summary)
    test["origin"] = result.origin
    (folder / "test.json").write_text(json.dumps(test, indent=2, default=str) + "\n")
    result.schedule.save(folder / "schedule.json")
    if result.history_jsonl is not None:  # serialized already, while the checks ran
        (folder / "history.jsonl").write_text(result.history_jsonl, encoding="utf-8")
    else:
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
    write_manifest(folder)
    return folder


def run_record(
    spec: TestSpec, valid: Any, digest: str, end_ms: float, summary: dict[str, Any]
) -> dict[str, Any]:
    """test.json: the spec, and what the run gave (digest, verdict, headline figures)."""
    return {
        "spec": spec.to_json(),
        "valid": valid,
        "digest": digest,
        "end_ms": end_ms,
        "exit_code": 2 if valid == "unknown" else (0 if valid else 1),
        "summary": _figures(summary),
    }


MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def write_manifest(folder: Path) -> None:
    """Record the sha256 of every file in `folder`; written last, so a folder with a
    manifest was written whole, and a file that no longer matches it was changed."""
    files = {
        path.relative_to(folder).as_posix(): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST and not path.name.endswith(".tmp")
    }
    data = {"version": MANIFEST_VERSION, "algorithm": "sha256", "files": files}
    partial = folder / (MANIFEST + ".tmp")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, folder / MANIFEST)  # all or nothing


def verify_manifest(folder: Path) -> None:
    """HarnessError naming the first file missing or changed since the folder was written."""
    path = folder / MANIFEST
    if not path.is_file():
        raise HarnessError(f"{path}: missing: the folder was not written whole (or by d11)")
    data = _read_json(path)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise HarnessError(f"{path}: not a manifest (expected 'files': {{name: sha256}})")
    for name, digest in files.items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise HarnessError(f"{path}: {name!r} is outside the store folder")
        if not target.is_file():
            raise HarnessError(f"{folder / name}: missing (the manifest lists it)")
        if _sha256(target) != digest:
            raise HarnessError(
                f"{folder / name}: changed since the run was stored (its sha256 no longer "
                "matches the manifest): refusing to trust it"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read: {exc.strerror}") from None
    return digest.hexdigest()


def _expected(result: TestResult, name: str) -> dict[str, Any] | None:
    judged = result.judged.get(name)
    if judged is None or judged.expected is None:
        return None
    return {"valid": judged.expected.valid, "why": judged.expected.why}


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a stage summary (the series stay in the report)."""
    keys = (
        "offered_tps",
        "goodput_tps",
        "payment_p99_ms",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "error_rate",
    )
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
    origin: str = "test"  # test (d11 test, hunt), run (d11 run) or tui (saved live)


def latest_run(folder: Path) -> Path:
    """`folder` itself if it is a run; if it is a test's folder (store/<test>/), its latest run."""
    folder = Path(folder)
    if not folder.is_dir() or (folder / "test.json").exists() or (folder / MANIFEST).exists():
        return folder
    runs = sorted(p.parent for p in folder.glob(f"*/{MANIFEST}"))
    return runs[-1] if runs else folder


def load_store(folder: Path) -> StoredRun:
    """Read a store folder; HarnessError naming the file and the problem if it is not whole.

    Each file is parsed and checked (so a broken one is named with its line),
    then every file is checked against the manifest (so an edited one, even a
    well-formed one such as an emptied history, is refused).
    """
    from checks.harness.inputs import check_schedule, load_spec, read_schedule

    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"{folder}: no such store folder")
    test_path = folder / "test.json"
    if not test_path.is_file() and (folder / "summary.json").is_file():
        raise HarnessError(
            f"{test_path}: missing: a run folder written before d11 run stored its spec; "
            "run it again to get a folder replay can read"
        )
    test = _read_json(test_path)
    if not isinstance(test, dict) or "spec" not in test:
        raise HarnessError(f"{test_path}: not a test record (no 'spec')")
    spec = load_spec(test["spec"], str(test_path))
    digest, valid = test.get("digest", ""), test.get("valid")
    if not isinstance(digest, str):
        raise HarnessError(f"{test_path}: digest must be a string")
    if valid not in (True, False, "unknown"):
        raise HarnessError(f'{test_path}: valid must be true, false or "unknown"')
    schedule = read_schedule(folder / "schedule.json")
    try:
        history = read_jsonl(folder / "history.jsonl")
    except HistoryError as exc:
        raise HarnessError(f"corrupt history: {exc}") from None
    except OSError as exc:
        raise HarnessError(f"{folder / 'history.jsonl'}: cannot read: {exc.strerror}") from None
    verdicts = _read_json(folder / "verdicts.json")
    if not isinstance(verdicts, dict) or not all(isinstance(v, dict) for v in verdicts.values()):
        raise HarnessError(f"{folder / 'verdicts.json'}: expected an object of verdict objects")
    verify_manifest(folder)
    check_schedule(schedule, spec, str(folder / "schedule.json"))
    origin = test.get("origin", "test")
    if origin not in ("test", "run", "tui"):
        raise HarnessError(f"{test_path}: origin must be test, run or tui, not {origin!r:.40}")
    return StoredRun(folder, spec, schedule, history, digest, valid, verdicts, origin)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise HarnessError(f"{path}: not valid JSON: {why}") from None


def writable_folder_problem(folder: Path) -> str:
    """Why files cannot be written under `folder` (created if need be), or ""."""
    if folder.exists() and not folder.is_dir():
        return "exists and is not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".d11-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    return ""


def writable_file_problem(path: Path) -> str:
    """Why `path` cannot be written as a file (its folder is created if need be), or ""."""
    if path.is_dir():
        return "is a folder, not a file"
    if path.exists() and not path.is_file():
        return "exists and is not a regular file"
    if path.exists() and not os.access(path, os.W_OK):
        return "cannot write it (permission denied)"
    return writable_folder_problem(path.parent)
