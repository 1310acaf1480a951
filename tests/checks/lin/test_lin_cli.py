"""`d11 check lin` and `d11 bench checker`: verdicts, exit statuses, JSON, HTML."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from lin_gen import events
from typer.testing import CliRunner

from checks.history import write_jsonl
from checks.lin import native
from checks.lin.corpus import corpus_dir, parse_go_bench
from tui.cli import app

runner = CliRunner()

STALE = events(
    ("invoke", 0, "write", 1),
    ("ok", 0, "write", 1),
    ("invoke", 1, "read", None),
    ("ok", 1, "read", None),
)
FINE = events(("invoke", 0, "write", 1), ("ok", 0, "write", 1))


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_linearizable_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "fine.jsonl"
    write_jsonl(path, FINE)
    code, out = run("check", "lin", str(path), "--model", "register")
    assert code == 0, out
    assert "linearizable" in out and "not linearizable" not in out


def test_not_linearizable_exits_1_and_writes_the_timeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline goes to the current directory (or --out), never beside the
    history: a checker does not write into its input's folder uninvited."""
    stored = tmp_path / "store" / "ch9-steady" / "20261206T000000Z"
    stored.mkdir(parents=True)
    path = stored / "history.jsonl"
    write_jsonl(path, STALE)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out = run("check", "lin", str(path), "--model", "register")
    assert code == 1, out
    assert "not linearizable" in out and "cannot linearize" in out
    assert sorted(p.name for p in stored.iterdir()) == ["history.jsonl"]
    html = here / "20261206T000000Z.lin.html"  # a run's history is named after its folder
    assert html.is_file() and "<svg" in html.read_text()
    assert f"timeline: {html.name}" in out
    for option in ("--out", "--html"):  # --html: the option's first name, kept
        custom = tmp_path / f"t{option}.html"
        code, out = run("check", "lin", str(stored), "-m", "register", option, str(custom))
        assert code == 1 and custom.is_file(), out


def test_json_prints_one_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "stale.jsonl"
    write_jsonl(path, STALE)
    result = runner.invoke(app, ["check", "lin", str(path), "-m", "register", "--json"])
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["checker"] == "lin" and verdict["valid"] is False
    assert verdict["witness"]["cannot_linearize"]["op"] == "read -> nil"
    assert verdict["details"]["html"].endswith(".lin.html")


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('{"type": "ok", "process": 0, "f": "read"}\n', [], "line 1"),
        ("not a history\n", [], "cannot tell the format"),
        ('{"type": "invoke", "process": 0, "f": "read"}\n', ["--model", "nope"], "unknown model"),
        ('{"type": "invoke", "process": 0, "f": "read"}\n', ["--format", "xml"], "unknown format"),
    ],
)
def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(content)
    code, out = run("check", "lin", str(path), "--model", "register", *args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_unknown_exits_2(tmp_path: Path) -> None:
    rows = [("invoke", p, "append", f"<{p}>", {"key": "k"}) for p in range(12)]
    rows += [("invoke", 98, "put", "", {"key": "k"})]  # may reset the state: no quick cut
    rows += [("invoke", 99, "get", None, {"key": "k"}), ("ok", 99, "get", "?", {"key": "k"})]
    path = tmp_path / "hard.jsonl"
    write_jsonl(path, events(*rows))
    code, out = run("check", "lin", str(path), "--model", "kv", "--timeout-s", "0.05")
    assert code == 2, out
    assert "unknown" in out


def test_porcupine_formats_are_read(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.write_text(
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
        "INFO  jepsen.util - 0\t:ok\t:write\t1\n"
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]\n"
        "INFO  jepsen.util - 1\t:fail\t:cas\t[1 2]\n"
    )
    assert run("check", "lin", str(log), "-m", "etcd", "--no-html")[0] == 1
    assert run("check", "lin", str(log), "-m", "cas-register")[0] == 0


@pytest.mark.slow
@pytest.mark.skipif(not (corpus_dir() / "verdicts.json").is_file(), reason="no corpus")
def test_bench_checker_prints_families_and_total() -> None:
    code, out = run("bench", "checker", "--repeat", "1")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("total_s: ")
    float(lines[-1].split(":")[1])
    assert "verdicts: 108 of 108 as expected" in out
    for family in ("etcd", "c01-ok.txt", "c50-bad.txt"):
        assert any(line.startswith(family) for line in lines)
    assert "NOT measured here" in out
    assert "porcupine ms" not in out  # no comparison column without a measurement
    assert "No figure below is quoted from elsewhere." in out
    assert "slower_than_porcupine" not in out
    engine = next(line for line in lines if line.startswith("engine: "))
    assert engine.split()[1] == ("native" if native.helper() else "python")


@pytest.mark.slow
@pytest.mark.skipif(not (corpus_dir() / "verdicts.json").is_file(), reason="no corpus")
def test_bench_checker_says_the_reference_ran_when_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(native.ENGINE_VAR, "python")
    code, out = run("bench", "checker", "--repeat", "1")
    assert code == 0, out
    assert "engine: python (checks/lin/search.py; D11_LIN_ENGINE=python)" in out


GO_BENCH_OUTPUT = """goos: linux
BenchmarkEtcdJepsen000-2    	       3	    120000 ns/op
BenchmarkEtcdJepsen001-2    	       3	    380000 ns/op
BenchmarkEtcdJepsen001-2    	       3	    390000 ns/op
BenchmarkKv1ClientOk-2      	       3	    134218 ns/op
BenchmarkKv1ClientOk-2      	       3	    120000 ns/op
BenchmarkKv50ClientsBad-2   	       3	  87291430 ns/op
BenchmarkKvNoPartition10ClientsOk-2 	       3	  958301 ns/op
PASS
"""


def test_go_bench_output_is_summed_per_family() -> None:
    times = parse_go_bench(GO_BENCH_OUTPUT)
    assert set(times) == {"etcd", "c01-ok.txt", "c50-bad.txt"}  # not the unpartitioned kv
    assert times["c01-ok.txt"] == (pytest.approx(0.00012), 1)  # the best of two runs
    assert times["etcd"][1] == 2 and times["etcd"][0] == pytest.approx(0.0005)
    assert times["c50-bad.txt"] == (pytest.approx(0.08729143), 1)


@pytest.mark.skipif(not (corpus_dir() / "verdicts.json").is_file(), reason="no corpus")
def test_bench_checker_without_a_porcupine_checkout_is_one_line_exit_2(tmp_path: Path) -> None:
    code, out = run("bench", "checker", "--repeat", "1", "--porcupine", str(tmp_path))
    assert code == 2
    assert out.count("\n") == 1 and out.startswith("error: ")


PORCUPINE_CHECKOUT = os.environ.get("D11_PORCUPINE_CHECKOUT", "")


@pytest.mark.slow
@pytest.mark.skipif(
    not (PORCUPINE_CHECKOUT and shutil.which("go") and (corpus_dir() / "verdicts.json").is_file()),
    reason="set D11_PORCUPINE_CHECKOUT to a checkout of Porcupine, with Go installed",
)
def test_bench_checker_measures_porcupine_beside_us() -> None:
    code, out = run("bench", "checker", "--repeat", "1", "--porcupine", PORCUPINE_CHECKOUT)
    assert code == 0, out
    assert "measured in this run" in out and "NOT measured" not in out
    etcd = next(line for line in out.splitlines() if line.startswith("etcd"))
    assert etcd.endswith("x")  # the ratio to Porcupine's time, measured beside ours
    assert any(line.startswith("slower_than_porcupine: ") for line in out.splitlines())
    assert out.strip().splitlines()[-1].startswith("total_s: ")


def test_json_even_for_unreadable_input(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"type": "ok"\n')
    result = runner.invoke(app, ["check", "lin", str(path), "-m", "register", "--json"])
    assert result.exit_code == 2
    verdict = json.loads(result.stdout)
    assert verdict["valid"] == "unknown" and "line 1" in verdict["summary"]
