"""The chapters: each package wires reference components into one stage.

`STAGES` maps a chapter id ("ch1") and its aliases ("monolith") to its
`chapters.stage.Stage`. Chapter packages are imported on first use, so
`import chapters` stays cheap; a later chapter joins by adding its module
(which defines `STAGE`) to `STAGE_MODULES`. A listed package that does not
exist is an error when `chapters` is imported (at start-up), one that does
not define `STAGE` when a lookup reaches it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chapters.stage import Stage

__all__ = ["STAGES", "STAGE_MODULES", "get_stage", "stage_on_first_use"]

STAGE_MODULES: tuple[str, ...] = (
    "chapters.ch1_monolith",
    "chapters.ch2_sharding",
    "chapters.ch3_cells",
    "chapters.ch4_paxos",
    "chapters.ch5_mq",
    "chapters.ch6_degrade",
    "chapters.ch7_rehearsal",
    "chapters.capstone",
)


class _Registry(Mapping[str, "Stage"]):
    """Chapter id or alias -> Stage, filled by importing STAGE_MODULES in order.

    A lookup imports chapters only until its name turns up: `d11 test ch4`
    need not build chapters 5 to 7 and the capstone (0.28 s of its start,
    measured). Iterating, or a name no chapter has, imports them all.
    """

    def __init__(self) -> None:
        self._stages: dict[str, Stage] = {}
        self._imported = 0  # STAGE_MODULES[:_imported] are in _stages

    def _import_next(self) -> None:
        name = STAGE_MODULES[self._imported]
        module = importlib.import_module(name)
        stage: Stage | None = getattr(module, "STAGE", None)
        if stage is None:
            raise ImportError(f"{name} is in STAGE_MODULES but defines no STAGE")
        for key in (stage.id, *stage.aliases):
            assert key not in self._stages, f"stage name {key!r} is taken twice"
            self._stages[key] = stage
        self._imported += 1

    def _load(self) -> dict[str, Stage]:
        while self._imported < len(STAGE_MODULES):
            self._import_next()
        return self._stages

    def __getitem__(self, key: str) -> Stage:
        while key not in self._stages and self._imported < len(STAGE_MODULES):
            self._import_next()
        return self._stages[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def chapters(self) -> list[Stage]:
        """Each stage once, in chapter order."""
        unique = {id(s): s for s in self._load().values()}
        return sorted(unique.values(), key=lambda s: s.id)


def _check_listed() -> None:
    """Every STAGE_MODULES entry exists (found, not imported: `import chapters` stays cheap)."""
    missing = [name for name in STAGE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"STAGE_MODULES names {missing[0]!r}, which does not exist")


_check_listed()
STAGES = _Registry()


def get_stage(name: str) -> Stage:
    """The stage called `name` (id or alias); StageError with the known names if none."""
    from chapters.stage import StageError

    try:
        return STAGES[name]
    except KeyError:
        known = ", ".join(sorted(STAGES))
        raise StageError(f"no chapter {name!r} (known: {known})") from None


def stage_on_first_use(package: str, names: Collection[str]) -> Callable[[str], Any]:
    """A chapter package's module `__getattr__` (PEP 562): `names` come from its
    `stage` module, imported on first use. `d11` imports every chapter's
    commands (cli.py) at start-up; building a heavy stage there would make
    every command pay for it."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f"{package}.stage"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
