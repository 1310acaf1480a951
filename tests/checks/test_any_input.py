"""Verdicts you can trust on any input: each class of wrong answer, crash or
stray file seen before, as a test that fails on the code before the fix.

Every `d11 check` command answers a malformed input with exit 2 and one
line naming the file and line, never a traceback and never a verdict.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.history import HistoryError
from checks.values import FALSE, TRUE, Float, Map, value_key
from tui.cli import app

runner = CliRunner()
CHECKERS = ("lin", "bank", "ledger", "txn", "delivery")
W = '{"type": "invoke", "process": 0, "f": "w", "value": '  # ... a value, then "}"


def jsonl(tmp_path: Path, name: str, events: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def op(process: int | str, f: str, inv: object, out: object, kind: str = "ok") -> list[dict]:
    return [
        {"type": "invoke", "process": process, "f": f, "value": inv},
        {"type": kind, "process": process, "f": f, "value": out},
    ]


def short_id(value: object) -> str | None:
    """Test ids cut short (some cases are 5,000 brackets long)."""
    return value[:48] if isinstance(value, str) else None


def check(*args: str) -> object:
    res = runner.invoke(app, ["check", *args])
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res


# -- values keep their type (Clojure's =) ------------------------------------


def test_canonical_values_compare_as_clojure_does() -> None:
    assert value_key(True) == TRUE and value_key(True) != 1 and value_key(1) != TRUE
    assert value_key(False) != 0 and value_key(False) == FALSE
    assert value_key(1) != value_key(1.0) and value_key(1.0) == Float(1.0)
    assert value_key(1) != value_key("1")
    assert value_key([1, 2]) == value_key((1, 2))  # (= [1 2] '(1 2))
    assert value_key({"a": 1, "b": 2}) != value_key([["a", 1], ["b", 2]])
    assert value_key({"a": 1, "b": 2}) == Map({"b": 2, "a": 1})
    assert value_key([True]) != value_key([1])
    assert len({value_key(True), value_key(1), value_key(1.0), value_key("1")}) == 4


def test_register_written_true_and_read_1_is_not_linearizable(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "h.jsonl", op(0, "write", True, True) + op(1, "read", None, 1))
    res = check("lin", str(path), "-m", "register", "--no-html")
    assert res.exit_code == 1, res.output
    assert "not linearizable" in res.output
    ok = jsonl(tmp_path, "ok.jsonl", op(0, "write", True, True) + op(1, "read", None, True))
    assert check("lin", str(ok), "-m", "register").exit_code == 0


@pytest.mark.parametrize(
    ("model", "events"),
    [
        ("register", op(0, "write", False, False) + op(1, "read", None, 0)),
        ("register", op(0, "write", 1, 1) + op(1, "read", None, 1.0)),
        ("register", op(0, "write", 1, 1) + op(1, "read", None, "1")),
        ("cas-register", op(0, "write", 1, 1) + op(1, "cas", [True, 2], [True, 2])),
        ("set", op(0, "add", 1, 1) + op(1, "read", None, [True])),
        ("queue", op(0, "enqueue", True, True) + op(1, "dequeue", None, 1)),
    ],
)
def test_models_tell_types_apart(tmp_path: Path, model: str, events: list[dict]) -> None:
    path = jsonl(tmp_path, "h.jsonl", events)
    res = check("lin", str(path), "-m", model, "--no-html")
    assert res.exit_code == 1, res.output


def test_delivery_ids_keep_their_type(tmp_path: Path) -> None:
    # Message 1 is committed; the consumer received "1", another message: 1 is lost.
    events = op("p", "publish", {"id": 1, "key": "k"}, {"id": 1, "key": "k"}) + op(
        "c", "receive", None, {"id": "1", "key": "k"}
    )
    res = check("delivery", str(jsonl(tmp_path, "d.jsonl", events)), "--json")
    assert res.exit_code == 1, res.output
    verdict = json.loads(res.stdout)
    kinds = {p["kind"] for p in verdict["witness"]}
    assert {"lost", "phantom"} <= kinds


@pytest.mark.parametrize("bad_id", [None, True, [1], {"a": 1}])
def test_delivery_refuses_ids_that_are_not_ids(tmp_path: Path, bad_id: object) -> None:
    events = op("p", "publish", {"id": 1}, {"id": 1}) + op("c", "receive", None, {"id": bad_id})
    res = check("delivery", str(jsonl(tmp_path, "d.jsonl", events)))
    assert res.exit_code == 2
    assert "d.jsonl: line 3: a message id is a string or an integer" in res.output


def test_txn_true_is_not_1(tmp_path: Path) -> None:
    # T1 writes true to x; T2 reads x = 1: nobody wrote 1, a garbage read.
    events = op(0, "txn", [["w", "x", True]], [["w", "x", True]]) + op(
        1, "txn", [["r", "x", None]], [["r", "x", 1]]
    )
    res = check("txn", str(jsonl(tmp_path, "t.jsonl", events)), "--json")
    assert res.exit_code == 1, res.output
    assert "garbage-read" in json.loads(res.stdout)["details"]["anomaly_types"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinity_are_not_json(tmp_path: Path, token: str) -> None:
    path = tmp_path / "h.jsonl"
    line = '{"type": "invoke", "process": 0, "f": "write", "value": ' + token + "}\n"
    path.write_text(line, encoding="utf-8")
    for checker in CHECKERS:
        res = check(checker, str(path), *(["-m", "register"] if checker == "lin" else []))
        assert res.exit_code == 2, (checker, res.output)
        assert "h.jsonl: line 1:" in res.output


# -- a value of the wrong shape is an error, not a verdict --------------------


def test_cas_of_a_two_key_object_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    events = op(0, "write", 1, 1) + op(1, "cas", {"a": 1, "b": 2}, {"a": 1, "b": 2})
    res = check("lin", str(jsonl(tmp_path, "h.jsonl", events)), "-m", "cas-register")
    assert res.exit_code == 2, res.output
    assert "h.jsonl: line 3: cas needs a value [old new]" in res.output


def test_porcupine_cas_of_a_map_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "etcd.log"
    path.write_text(
        "INFO  jepsen.util - 1\t:invoke\t:cas\t{:a 1, :b 2}\n"
        "INFO  jepsen.util - 1\t:ok\t:cas\t{:a 1, :b 2}\n",
        encoding="utf-8",
    )
    res = check("lin", str(path))
    assert res.exit_code == 2, res.output
    assert "etcd.log: line 1: cas needs a value [old new]" in res.output


@pytest.mark.parametrize(
    ("checker", "events", "words"),
    [
        ("lin", op(0, "put", ["k"], None), "kv"),
        ("txn", op(0, "txn", [["append", {"k": 1}, 1]], [["append", {"k": 1}, 1]]), "key"),
        ("txn", op(0, "txn", [["append", "x", [1]]], [["append", "x", [1]]]), "scalar"),
        ("txn", op(0, "txn", [["r", "x", None]], [["r", "x", [{"a": 1}]]]), "scalar"),
        ("lin", op(0, "get", None, None) and op(0, "put", [[1], "v"], None), "key"),
        (
            "txn",
            op(0, "txn", [["append", "x", 1]], [["append", "x", 1]])
            + op(1, "txn", [["r", "x", None]], [["r", "x", 5]]),
            "line 4: T2 reads x = 5: a list-append read is a list or nil",
        ),
        ("bank", op(0, "read", None, {"a": [1], "b": 2}), "balance is an integer"),
        ("bank", op(0, "read", None, {"a": "5", "b": 5}), "balance is an integer"),
        ("bank", op(0, "read", None, {"a": 2.5, "b": 5}), "balance is an integer"),
    ],
)
def test_collections_where_a_scalar_belongs(
    tmp_path: Path, checker: str, events: list[dict], words: str
) -> None:
    args = ["-m", "kv"] if checker == "lin" else []
    res = check(checker, str(jsonl(tmp_path, "h.jsonl", events)), *args)
    assert res.exit_code == 2, res.output
    assert "h.jsonl" in res.output and words in res.output


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"type": ["invoke"], "process": 0, "f": "read", "value": null}', "type must be"),
        ('{"type": {"a": 1}, "process": 0, "f": "read", "value": null}', "type must be"),
        ('{"type": "invoke", "process": [0], "f": "read", "value": null}', "process must be"),
        ('{"type": "invoke", "process": 1%s, "f": "read"}' % ("0" * 40), "process must be"),
        ('{"type": "invoke", "process": 0, "f": ["read"]}', "f (the operation name)"),
        ('{"type": "invoke", "process": 0, "f": "read", "time_ms": 1%s}' % ("0" * 400), "time"),
        ('{"type": "invoke", "process": 0, "f": "read", "time_ms": 1%s}' % ("0" * 5000), "JSON"),
        ('{"type": "invoke", "process": 0, "f": "read", "value": 1%s}' % ("0" * 40), "digits"),
        ('{"type": "invoke", "process": 0, "f": "read", "value": "\\ud800"}', "surrogate"),
        ('{"type": "invoke", "process": "\\udc00", "f": "read"}', "surrogate"),
        ('{"type": "invoke", "process": 0, "f": "read", "x": "\\ud83d"}', "surrogate"),
        (
            '{"type": "invoke", "process": 0, "f": "w", "value": %s}' % ("[" * 300 + "]" * 300),
            "deep",
        ),
        (
            '{"type": "invoke", "process": 0, "f": "w", "value": %s}' % ("[" * 5000 + "]" * 5000),
            "deep",
        ),
    ],
    ids=short_id,
)
def test_jsonl_envelope_is_checked(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    for checker in CHECKERS:
        res = check(checker, str(path), *(["-m", "register"] if checker == "lin" else []))
        assert res.exit_code == 2, (checker, res.output)
        assert "h.jsonl: line 1:" in res.output and words in res.output.replace("\n", " ")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{:type [:invoke], :process 0, :f :read}", ":type must be"),
        ("{:type {:a 1}, :process 0, :f :read}", ":type must be"),
        ("{:type :invoke, :process [0], :f :read}", ":process must be"),
        ("{:type :invoke, :process 0, :f :read, :time 1%s}" % ("0" * 400), ":time"),
        ("{:type :invoke, :process 0, :f :read, :time 1%s}" % ("0" * 5000), "not a number"),
        ('{:type :invoke, :process 0, :f :read, :value "\\ud800"}', "surrogate"),
        ("{:type :invoke, :process 0, :f :read, :value %s}" % ("[" * 300 + "]" * 300), "deeper"),
        ("[{:type :invoke, :process 0, :f :read, :value 1.5e999}]", "not a number"),
    ],
    ids=short_id,
)
def test_edn_envelope_is_checked(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "h.edn"
    path.write_text(text + "\n", encoding="utf-8")
    for checker in CHECKERS:
        res = check(checker, str(path), *(["-m", "register"] if checker == "lin" else []))
        assert res.exit_code == 2, (checker, res.output)
        assert "h.edn: line 1" in res.output and words in res.output.replace("\n", " ")


@pytest.mark.parametrize(
    "line",
    [
        "INFO  jepsen.util - 1%s\t:invoke\t:read\tnil" % ("0" * 30),
        "INFO  jepsen.util - 1%s\t:invoke\t:read\tnil" % ("0" * 5000),
        'INFO  jepsen.util - 1\t:invoke\t:write\t"\\ud800"',
        "INFO  jepsen.util - 1\t:invoke\t:write\t%s" % ("[" * 200 + "]" * 200),
        "INFO  jepsen.util - 1\t:invoke\t:write\t1%s" % ("0" * 40),
    ],
    ids=short_id,
)
def test_porcupine_log_is_checked(tmp_path: Path, line: str) -> None:
    path = tmp_path / "etcd.log"
    path.write_text(line + "\n", encoding="utf-8")
    res = check("lin", str(path))
    assert res.exit_code == 2, res.output
    assert "etcd.log: line 1" in res.output


# -- the same answer for an empty history from every checker ----------------


@pytest.mark.parametrize("checker", CHECKERS)
def test_nemesis_only_history_is_unknown_everywhere(tmp_path: Path, checker: str) -> None:
    path = jsonl(
        tmp_path,
        "n.jsonl",
        [
            {"type": "info", "process": "nemesis", "f": "start-partition", "value": None},
            {"type": "info", "process": "nemesis", "f": "stop-partition", "value": None},
        ],
    )
    for args in ([], ["--json"]):
        res = check(checker, str(path), *args)
        assert res.exit_code == 2, res.output
        assert "no client operations" in res.output
    verdict = json.loads(check(checker, str(path), "--json").stdout)
    assert verdict["valid"] == "unknown" and verdict["details"]["reason"] == "no client operations"


# -- no stray files, no crash on an unwritable path ---------------------------


def test_no_timeline_beside_an_input_that_is_not_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline goes to the current directory, never beside the input."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    text = "".join(json.dumps(e) + "\n" for e in op(0, "write", 1, 1) + op(1, "read", None, 2))

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as f:
            f.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    res = check("lin", str(fifo))
    writer.join(timeout=10)
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "pipe"]
    assert [p.name for p in here.iterdir()] == ["pipe.lin.html"]


def test_unwritable_plot_and_html_paths(tmp_path: Path) -> None:
    bad_read = op(0, "write", 1, 1) + op(1, "read", None, 2)
    path = jsonl(tmp_path, "h.jsonl", bad_read)
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    nowhere = tmp_path / "a-file" / "x.html"  # (as root, only this is sure to be unwritable)
    res = check("lin", str(path), "--html", str(nowhere))
    assert res.exit_code == 2 and "cannot write" in res.output
    bank = jsonl(
        tmp_path,
        "b.jsonl",
        op(0, "read", None, {"a": 5, "b": 5}) + op(0, "read", None, {"a": 5, "b": 4}),
    )
    res = check("bank", str(bank), "--plot", str(tmp_path / "a-file" / "t.png"))
    assert res.exit_code == 2 and "cannot write the plot" in res.output


# -- the model, detected where the history says it ----------------------------


def test_model_detected_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the timeline of its failure is written here
    etcd = tmp_path / "etcd.log"
    etcd.write_text(
        "INFO  jepsen.util - 1\t:invoke\t:write\t3\n"
        "INFO  jepsen.util - 1\t:ok\t:write\t3\n"
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]\n"
        "INFO  jepsen.util - 2\t:fail\t:cas\t[3 4]\n",
        encoding="utf-8",
    )
    res = check("lin", str(etcd))
    # A failed cas observed that the register did not hold 3: after write 3, no.
    assert res.exit_code == 1, res.output
    assert "model: etcd (detected: a Porcupine etcd log" in res.output
    forced = check("lin", str(etcd), "-m", "cas-register", "--no-html")
    assert forced.exit_code == 0 and "model: cas-register (given with --model)" in forced.output
    edn = tmp_path / "h.edn"
    edn.write_text(
        "[{:type :invoke, :f :write, :value 1, :process 0}\n"
        " {:type :ok, :f :write, :value 1, :process 0}\n"
        " {:type :invoke, :f :cas, :value [1 2], :process 1}\n"
        " {:type :ok, :f :cas, :value [1 2], :process 1}]\n",
        encoding="utf-8",
    )
    res = check("lin", str(edn), "--json")
    assert res.exit_code == 0, res.output
    details = json.loads(res.stdout)["details"]
    assert details["model"] == "cas-register" and details["model_chosen"].startswith("detected")


def test_model_that_cannot_be_detected_lists_the_models(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "h.jsonl", op(0, "frobnicate", 1, 1))
    res = check("lin", str(path))
    assert res.exit_code == 2
    assert "--model" in res.output and "cas-register" in res.output and "frobnicate" in res.output


# -- bounded inputs -----------------------------------------------------------


def test_history_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "big.jsonl", op(0, "write", "x" * 1_100_000, None))
    for checker in CHECKERS:
        res = check(checker, str(path), "--max-mb", "1")
        assert res.exit_code == 2, res.output
        assert "bigger than 1 MB" in res.output and "--max-mb" in res.output


@pytest.mark.parametrize(
    "args",
    [
        ["--timeout-s", "nan"],
        ["--timeout-s", "inf"],
        ["--timeout-s", "-1"],
        ["--timeout-s", "1e400"],
        ["--explain-timeout-s", "nan"],
        ["--max-mb", "0"],
        ["--max-mb", "9" * 40],
    ],
)
def test_numeric_options_are_finite_and_in_range(tmp_path: Path, args: list[str]) -> None:
    path = jsonl(tmp_path, "h.jsonl", op(0, "write", 1, 1))
    res = check("lin", str(path), *args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and "invalid value for" in res.output.lower()


def test_check_value_is_iterative() -> None:
    from checks.values import check_value

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(HistoryError, match="deeper"):
        check_value(deep, "here")
