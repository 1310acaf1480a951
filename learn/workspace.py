"""The learner's workspace: a copy of the packages, the exercise files, the state file.

`d11 learn start` copies `reference/`, `checks/` and `chapters/` from where
they are installed into the workspace (never touching the installed ones),
then rewrites the exercise's file there: a region blanked, a bug planted, or
a settings file written. Progress lives in `.d11-learn.json` in the
workspace, so `status` and `report` read it back, and a workspace can be
zipped, handed in, and summarised by an instructor.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from learn.catalog import Exercise, all_exercises
from learn.checks import SCHEDULES
from learn.regions import (
    RegionError,
    apply_patches,
    blank_line,
    blank_region,
    not_done_sentinel,
    redact_bug_names,
    region_text,
    replace_region,
)
from learn.worker import PACKAGES, RESULT_PREFIX

__all__ = [
    "ENV_WORKSPACE",
    "STATE_FILE",
    "LearnError",
    "Workspace",
    "default_workspace",
    "source_root",
]

ENV_WORKSPACE = "D11_LEARN_WORKSPACE"
ENV_TIMEOUT = "D11_LEARN_TIMEOUT_S"  # overrides the kill timeout (tests, slow laptops)
DEFAULT_WORKSPACE = "d11-workshop"
STATE_FILE = ".d11-learn.json"
STATE_VERSION = 1
TIMEOUT_FACTOR = 3.0  # a check is killed after this many times its answer budget


class LearnError(Exception):
    """Something the learner must fix before going on: one line, no traceback."""


def default_workspace(cwd: Path | None = None) -> Path:
    """$D11_LEARN_WORKSPACE; else the workspace we are in (a learner who went into it, or
    into one of its folders, to edit); else ./d11-workshop."""
    if os.environ.get(ENV_WORKSPACE):
        return Path(os.environ[ENV_WORKSPACE])
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / STATE_FILE).is_file():
            return folder
    return here / DEFAULT_WORKSPACE


def source_root() -> Path:
    """The folder holding the installed `reference`, `checks` and `chapters` packages."""
    roots = set()
    for name in PACKAGES:
        spec = find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise LearnError(f"the {name} package is not installed (pip install -e .)")
        roots.add(Path(next(iter(spec.submodule_search_locations))).resolve().parent)
    if len(roots) != 1:
        raise LearnError(f"the packages are installed in different places: {sorted(roots)}")
    root = roots.pop()
    if (root / STATE_FILE).exists():  # PYTHONPATH=. exported in a workspace
        raise LearnError(
            f"the code is imported from a workspace ({root}), not the installed one: "
            "unset PYTHONPATH for d11 learn"
        )
    return root


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CheckResult:
    status: str  # pass | fail | not-done | syntax | import | crash | missing | timeout | ...
    headline: str
    lines: list[str]
    seconds: float
    truth: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class Workspace:
    """One learner's folder."""

    def __init__(self, path: Path, source: Path | None = None) -> None:
        self.path = path.resolve()
        self._source = source
        self.backups: list[Path] = []  # files `start`/`reset` kept before rewriting them

    # -- where things are ----------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    @property
    def source(self) -> Path:
        if self._source is None:
            self._source = source_root()
        return self._source

    def exists(self) -> bool:
        return self.state_path.exists()

    # -- state ------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        if not self.state_path.exists():
            raise LearnError(
                f"no workshop in {self.path}: start one with d11 learn start ID "
                "(d11 learn list shows the IDs)"
            )
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8
            message = f"{self.state_path} is unreadable ({exc}); {self._way_back()}"
            raise LearnError(message) from None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            message = f"{self.state_path} is not a d11 learn state file; {self._way_back()}"
            raise LearnError(message)
        for key in ("started", "passed", "attempts", "answers"):
            if not isinstance(state.setdefault(key, {}), dict):
                raise LearnError(
                    f"{self.state_path} is damaged ({key!r} is not a table); {self._way_back()}"
                )
        if not isinstance(state.get("current", ""), str):
            raise LearnError(f"{self.state_path} is damaged ('current'); {self._way_back()}")
        return state

    def _way_back(self) -> str:
        """What to do about a damaged state file: the last good copy, else start the record over."""
        backup = self.state_path.with_name(STATE_FILE + ".bak")
        restore = f"copy {backup.name} over it (the state before the last change), or " * (
            backup.exists()
        )
        return restore + "delete it to start the record over (your code is kept)"

    def save(self, state: dict[str, Any]) -> None:
        if self.state_path.exists():  # the last good state, for _way_back
            shutil.copyfile(self.state_path, self.state_path.with_name(STATE_FILE + ".bak"))
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.state_path)

    # -- making the workspace and the exercises ------------------------------------------

    def create(self) -> bool:
        """Copy the packages in, if this is a new workspace. True if it was created now."""
        if self.exists():
            return False
        if self.path.exists() and any(self.path.iterdir()):
            configs = {e.config_file for e in all_exercises()}
            ours = {STATE_FILE, STATE_FILE + ".bak", "README.txt", SCHEDULES}
            known = {*PACKAGES, *ours, *configs}
            strangers = [p.name for p in self.path.iterdir() if p.name not in known]
            if strangers:
                raise LearnError(
                    f"{self.path} exists and holds other files ({', '.join(sorted(strangers)[:3])}"
                    "): choose another folder with --workspace"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in PACKAGES:
            if (self.path / name).exists():
                continue  # a workspace whose state file was deleted: its code is kept
            shutil.copytree(self.source / name, self.path / name, ignore=ignore)
        (self.path / "README.txt").write_text(_README)
        self.save({"version": STATE_VERSION, "created": _now(), "source": str(self.source)})
        return True

    def pristine(self, relpath: str) -> str:
        return (self.source / relpath).read_text()

    def exercise_text(self, ex: Exercise, base: str | None = None) -> str:
        """The exercise file as `start` writes it: blanked or with the bug planted.

        `base` is the learner's current file: only the exercise's region is
        rewritten in it, so other exercises' work in the same file stays.
        """
        text = self.pristine(ex.file) if base is None else base
        if ex.kind == "implement":
            return blank_region(text, ex.region, ex.id, ex.task)
        if ex.kind == "find-bug":  # the region as in the source, then the bug planted
            original = region_text(self.pristine(ex.file), ex.region)
            planted = apply_patches(replace_region(text, ex.region, original), ex.patches)
            return redact_bug_names(planted)  # no comment names the bug to find
        return text

    def start(self, ex: Exercise) -> tuple[list[Path], bool]:
        """Set the exercise up; (the files to edit, whether they were written now).

        Starting an exercise already started writes nothing: its work stays
        (`reset` starts it over).
        """
        self.create()
        state = self.load()
        fresh = ex.id not in state["started"]
        written = self._write_exercise(ex) if fresh else self._files(ex)
        state["current"] = ex.id
        state["started"].setdefault(ex.id, _now())
        self.save(state)
        return written, fresh

    def reset(self, ex: Exercise) -> list[Path]:
        """Put the exercise back as `start` left it; it counts as not passed again."""
        state = self.load()
        written = self._write_exercise(ex)
        state["passed"].pop(ex.id, None)
        state["started"].setdefault(ex.id, _now())
        state["current"] = ex.id
        self.save(state)
        return written

    def _files(self, ex: Exercise) -> list[Path]:
        names = [n for n in (ex.file, ex.config_file) if n]
        return [self.path / n for n in names]

    def _write_exercise(self, ex: Exercise) -> list[Path]:
        if ex.file:
            target = self.path / ex.file
            target.parent.mkdir(parents=True, exist_ok=True)
            base = target.read_text() if target.exists() else None
            try:
                text = self.exercise_text(ex, base)
            except RegionError:  # the learner's file lost the markers: start from the source
                try:
                    text = self.exercise_text(ex)
                except RegionError as exc:  # the source drifted from the exercise: ours
                    raise LearnError(f"exercise {ex.id} no longer fits the source: {exc}") from None
            if base is not None and base not in (text, self.pristine(ex.file)):
                self._back_up(target, base)
            target.write_text(text)
        if ex.config_file:
            target = self.path / ex.config_file
            if target.exists() and target.read_text() != ex.config_template:
                self._back_up(target, target.read_text())
            target.write_text(ex.config_template)
        return self._files(ex)

    def _back_up(self, target: Path, text: str) -> None:
        """Keep the learner's file as it was before `start`/`reset` rewrote it (a region
        of one exercise can hold another's: ch2's fence holds the empty rollback)."""
        backup = target.with_name(target.name + ".bak")
        backup.write_text(text)
        self.backups.append(backup)

    def apply_solution(self, ex: Exercise) -> str | None:
        """Put the reference solution in this workspace (the proofs and `learn.timing`);
        the answer to give `check`, if the exercise takes one."""
        if ex.kind in ("implement", "find-bug"):
            target = self.path / ex.file
            original = region_text(self.pristine(ex.file), ex.region)
            target.write_text(replace_region(target.read_text(), ex.region, original))
        if ex.kind == "configure":
            (self.path / ex.config_file).write_text(ex.answer)
        if ex.kind == "find-bug":
            return ex.answer
        if ex.kind == "measure":
            truth = self.run_check(ex, truth=True)
            if not truth.passed:
                raise LearnError(f"could not measure {ex.id} on the reference: {truth.headline}")
            return truth.truth
        return None

    def solution(self, ex: Exercise) -> str:
        """The reference solution's text: the original region, or the reference file."""
        if ex.kind == "configure":
            return ex.answer
        if ex.kind in ("implement", "find-bug"):
            return region_text(self.pristine(ex.file), ex.region)
        return ex.solution_note

    def region_line(self, ex: Exercise) -> int:
        """The 1-based line the learner edits (`blank_line`: the blank's raise)."""
        try:
            return blank_line((self.path / ex.file).read_text(), ex.region, ex.id)
        except (OSError, RegionError):
            return 1

    # -- checking ---------------------------------------------------------------------------

    def precheck(self, ex: Exercise) -> CheckResult | None:
        """What stops a check from running at all, said plainly (None: nothing)."""
        state = self.load()
        if ex.id not in state["started"]:
            return _stop("not-started", f"{ex.id} is not started: d11 learn start {ex.id}")
        for name in PACKAGES:
            if not (self.path / name / "__init__.py").exists():
                return _stop(
                    "missing",
                    f"{name}/ is missing from {self.path}: restore it, or start over in "
                    "a fresh folder (--workspace)",
                )
        if ex.file:
            target = self.path / ex.file
            if not target.exists():
                return _stop(
                    "missing", f"{ex.file} is missing: d11 learn reset {ex.id} writes it again"
                )
            text = target.read_text()
            if not_done_sentinel(ex.id) in text:
                line = self.region_line(ex)  # the line start named: the blank's raise
                if not_done_sentinel(ex.id) not in text.splitlines()[line - 1]:  # moved out
                    line = text[: text.index(not_done_sentinel(ex.id))].count("\n") + 1
                return _stop(
                    "not-done",
                    f"{ex.id} is not done yet: the blank at {ex.file}:{line} still raises "
                    "(fill it in and delete the raise)",
                )
            try:
                compile(text, str(target), "exec")
            except SyntaxError as exc:
                return _stop("syntax", f"{ex.file}:{exc.lineno}: {exc.msg}")
        if ex.config_file and not (self.path / ex.config_file).exists():
            return _stop(
                "missing", f"{ex.config_file} is missing: d11 learn reset {ex.id} writes it again"
            )
        return None

    def run_check(
        self,
        ex: Exercise,
        seeds: int = 1,
        answer: str | None = None,
        truth: bool = False,
    ) -> CheckResult:
        """Run the exercise's check in a subprocess on this workspace (or, `truth`, the source)."""
        import time

        root = self.source if truth else self.path
        args = [sys.executable, "-m", "learn.worker", ex.id, "--seeds", str(seeds)]
        if answer is not None:
            args += ["--answer", answer]
        if truth:
            args.append("--truth")
        args += ["--here", shown_path(root)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(root), *_learn_path()])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        timeout_s = float(os.environ.get(ENV_TIMEOUT) or ex.seconds_max * TIMEOUT_FACTOR)
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return CheckResult(
                "timeout",
                f"the check ran for {timeout_s:.0f} s without an answer: a loop that never "
                "ends, or a wait that never returns?",
                [],
                time.perf_counter() - started,
            )
        seconds = time.perf_counter() - started
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                data = json.loads(line[len(RESULT_PREFIX) :])
                return CheckResult(
                    data["status"], data["headline"], data["lines"], seconds, data["truth"]
                )
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return CheckResult("crash", f"the check stopped without an answer: {tail}", [], seconds)

    def record(self, ex: Exercise, result: CheckResult, seeds: int) -> None:
        state = self.load()
        state["attempts"][ex.id] = state["attempts"].get(ex.id, 0) + 1
        if result.passed:
            state["passed"][ex.id] = {"at": _now(), "seeds": seeds}
        self.save(state)


def shown_path(folder: Path, cwd: Path | None = None) -> str:
    """`folder` as a learner types it from `cwd` (shell-quoted): relative when one holds
    the other ("d11-workshop", ".", "../.."), else absolute. The commands `check`
    prints are pasted where `check` was run."""
    here = (cwd or Path.cwd()).resolve()
    folder = folder.resolve()
    if folder == here or here in folder.parents or folder in here.parents:
        return shlex.quote(os.path.relpath(folder, here))
    return shlex.quote(str(folder))


def _learn_path() -> list[str]:
    """Where the `learn` package itself is (after the workspace on the path)."""
    spec = find_spec("learn")
    assert spec is not None and spec.submodule_search_locations
    return [str(Path(next(iter(spec.submodule_search_locations))).resolve().parent)]


def _stop(status: str, message: str) -> CheckResult:
    return CheckResult(status, message, [], 0.0)


_README = """\
This is a d11 learn workspace: your own copy of reference/, checks/ and chapters/.

d11 learn status             what is done, what is next
d11 learn start ID           set an exercise up here (its file is rewritten)
d11 learn check [ID]         run the checkers on YOUR copy (--seeds N for more seeds)
d11 learn hint ID --level N  a hint (1 to 3)
d11 learn reset ID           put the exercise's file back as it started

Other d11 commands run the installed code, not this copy. To run them on
your copy, put it first on the path: PYTHONPATH=THIS_FOLDER d11 run ch1 ...
(the commands `d11 learn check` prints have it already, as seen from where
you ran the check).
"""
