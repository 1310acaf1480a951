"""Porcupine's test corpus: where it is, and the verdict each history must get.

The corpus (github.com/anishathalye/porcupine, MIT licence) lives outside
the repository, in `../shared/corpora/porcupine` next to it, or wherever
`D11_PORCUPINE_CORPUS` points. `verdicts.json` holds the expected verdicts:
102 etcd register histories (`jepsen/etcd_NNN.log`) and 6 key-value ones
(`kv/cNN-ok|bad.txt`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "D11_PORCUPINE_CORPUS"

# Porcupine's own times on this corpus (Go), as given in the issue: reference
# figures, not measured by us.
PORCUPINE_ETCD_S = 0.8
PORCUPINE_C50_OK_S = 0.35


@dataclass(frozen=True, slots=True)
class CorpusEntry:
    family: str  # "etcd" or "kv"
    path: Path
    model: str  # the model name to check it with
    linearizable: bool


def corpus_dir() -> Path:
    """The corpus directory (it may not exist: callers check)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "corpora" / "porcupine"


def corpus_entries(root: Path | None = None) -> list[CorpusEntry]:
    """Every history with a verdict, etcd first (in name order), then kv."""
    root = corpus_dir() if root is None else root
    verdicts = json.loads((root / "verdicts.json").read_text(encoding="utf-8"))
    out = [
        CorpusEntry("etcd", root / "jepsen" / name, "etcd", bool(ok))
        for name, ok in sorted(verdicts["jepsen"]["linearizable"].items())
    ]
    out += [
        CorpusEntry("kv", root / "kv" / name, "kv", bool(ok))
        for name, ok in sorted(verdicts["kv"]["linearizable"].items(), key=_kv_order)
    ]
    return out


def _kv_order(item: tuple[str, bool]) -> tuple[str, bool]:
    name, _ = item
    return (name.split("-")[0], not name.endswith("-ok.txt"))
