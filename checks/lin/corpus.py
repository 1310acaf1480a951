"""Porcupine's test corpus: where it is, and the verdict each history must get.

The corpus (github.com/anishathalye/porcupine, MIT licence) lives outside
the repository, in `../shared/corpora/porcupine` next to it, or wherever
`D11_PORCUPINE_CORPUS` points. `verdicts.json` holds the expected verdicts:
102 etcd register histories (`jepsen/etcd_NNN.log`) and 6 key-value ones
(`kv/cNN-ok|bad.txt`).

`porcupine_times` runs Porcupine's own benchmarks (`go test -bench`) in a
checkout of it, so `d11 bench checker` compares with figures measured in the
same run, never with numbers copied from elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "D11_PORCUPINE_CORPUS"
GO_BENCH_TIMEOUT_S = 900  # the whole `go test -bench` run; it takes seconds
# Porcupine's benchmarks over this corpus: the etcd logs and the kv histories
# (the partitioned model, as we check them). Each times CheckEvents alone:
# the history is parsed before the timer starts.
GO_BENCH_PATTERN = "^Benchmark(EtcdJepsen[0-9]+|Kv[0-9]+Clients?(Ok|Bad))$"
_GO_BENCH_LINE = re.compile(
    r"^Benchmark(?:(EtcdJepsen)\d+|Kv(\d+)Clients?(Ok|Bad))(?:-\d+)?\s+\d+\s+([\d.]+) ns/op"
)


class PorcupineError(Exception):
    """Porcupine's benchmarks could not be run (no Go, not a checkout, a failure)."""


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


def porcupine_times(checkout: Path, runs: int) -> dict[str, tuple[float, int]]:
    """Run Porcupine's benchmarks in `checkout`: label -> (seconds, histories).

    Labels are ours ("etcd", "c50-ok.txt", ...); a label's seconds are the
    sum over its benchmarks of the best of `runs` checks (`-benchtime=1x
    -count=runs`), as ours are the best of their runs. Go modules are not
    fetched: Porcupine needs only the standard library.
    """
    go = shutil.which("go")
    if go is None:
        raise PorcupineError("no `go` on PATH (Debian: apt-get install golang-go)")
    if not (checkout / "porcupine_test.go").is_file():
        raise PorcupineError(f"{checkout} is not a checkout of Porcupine (no porcupine_test.go)")
    env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    with tempfile.TemporaryDirectory(prefix="d11-gocache-") as cache:
        env.setdefault("GOCACHE", cache)  # a HOME-less shell has no default cache
        try:
            done = subprocess.run(
                [
                    go,
                    "test",
                    "-run",
                    "^$",
                    "-bench",
                    GO_BENCH_PATTERN,
                    "-benchtime=1x",
                    f"-count={runs}",
                    ".",
                ],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=GO_BENCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PorcupineError(f"go test -bench ran over {GO_BENCH_TIMEOUT_S} s") from None
    if done.returncode != 0:
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise PorcupineError(f"go test -bench failed (exit {done.returncode}): {last[0]}")
    times = parse_go_bench(done.stdout)
    if not times:
        raise PorcupineError("go test -bench printed no benchmark of the corpus")
    return times


def parse_go_bench(output: str) -> dict[str, tuple[float, int]]:
    """`go test -bench` output -> label -> (seconds summed over its benchmarks,
    how many); a benchmark run more than once (`-count`) counts its best."""
    best_s: dict[str, float] = {}  # benchmark name -> its best time
    for line in output.splitlines():
        m = _GO_BENCH_LINE.match(line)
        if m is not None:
            name, seconds = line.split()[0], float(m.group(4)) / 1e9
            best_s[name] = min(seconds, best_s.get(name, seconds))
    times: dict[str, tuple[float, int]] = {}
    for name, seconds in best_s.items():
        m = _GO_BENCH_LINE.match(f"{name} 1 0 ns/op")
        assert m is not None  # it matched above
        etcd, clients, verdict, _ = m.groups()
        label = "etcd" if etcd else f"c{int(clients):02d}-{verdict.lower()}.txt"
        total_s, count = times.get(label, (0.0, 0))
        times[label] = (total_s + seconds, count + 1)
    return times
