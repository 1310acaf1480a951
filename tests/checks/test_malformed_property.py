"""Property tests: generated histories (JSON Lines, Jepsen EDN, Porcupine
logs), well-formed, odd or broken, and generated options, against every
`d11 check` command.

Two properties. Whatever the input, a command ends with 0, 1 or 2 and
never a traceback (nor an exception out of the command). And an input with
a known defect (a value that is not JSON, a collection where a scalar
belongs, a number no history holds, a lone surrogate, a value nested too
deep, an option out of range) ends with exit 2 and one line naming it.
Hypothesis uses the profile of tests/conftest.py (derandomized under CI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tui.cli import app

runner = CliRunner()
CHECKERS = ("lin", "bank", "ledger", "txn", "delivery")
OPS = (
    *("read", "write", "cas", "get", "put", "append", "add", "enqueue", "dequeue"),
    *("deposit", "transfer", "txn", "send", "commit", "rollback", "publish", "receive", "apply"),
)

# -- values, as JSON and as EDN -----------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "key", "from", "to", "amount", "a", "b"]), inner)
    ),
    max_leaves=12,
)


def edn(x: Any) -> str:
    """A value in EDN (maps get keyword keys)."""
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, float)):
        return repr(x)
    if isinstance(x, str):
        return json.dumps(x)  # EDN strings escape as JSON's do (\uXXXX included)
    if isinstance(x, list):
        return "[" + " ".join(edn(v) for v in x) + "]"
    return "{" + ", ".join(f":{k} {edn(v)}" for k, v in x.items()) + "}"


@st.composite
def events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Histories of plausible shape: mostly paired, with odd values anywhere."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 8))):
        process = draw(st.sampled_from([0, 1, 2, "nemesis", "c"]))
        f = draw(st.sampled_from(OPS))
        out.append({"type": "invoke", "process": process, "f": f, "value": draw(values)})
        if draw(st.booleans()) or process == "nemesis":
            kind = draw(st.sampled_from(["ok", "ok", "fail", "info"]))
            out.append({"type": kind, "process": process, "f": f, "value": draw(values)})
    return out


def as_text(fmt: str, evs: list[dict[str, Any]]) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(e) + "\n" for e in evs)
    if fmt == "edn":
        return "".join(
            "{"
            + ", ".join(f":{k} {edn(v) if k == 'value' else edn_field(v)}" for k, v in e.items())
            + "}\n"
            for e in evs
        )
    return "".join(
        f"INFO  jepsen.util - {e['process'] if isinstance(e['process'], int) else 9}"
        f"\t:{e['type']}\t:{e['f']}\t{edn(e['value'])}\n"
        for e in evs
    )


def edn_any(k: str, v: Any) -> str:
    return edn(v) if k == "value" else edn_field(v)


def edn_field(v: Any) -> str:
    return f":{v}" if isinstance(v, str) else edn(v)


options = st.sampled_from(
    [
        [],
        ["--json"],
        ["--format", "jsonl"],
        ["--format", "edn"],
        ["--format", "porcupine-etcd"],
        ["--format", "nonsense"],
        ["--max-mb", "1"],
    ]
)


def run(path: Path, checker: str, extra: list[str]) -> Any:
    res = runner.invoke(app, ["check", checker, str(path), *extra])
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1, 2), res.output
    return res


@pytest.mark.slow
@given(
    evs=events(),
    fmt=st.sampled_from(["jsonl", "edn", "porcupine"]),
    checker=st.sampled_from(CHECKERS),
    extra=options,
    model=st.sampled_from([None, "register", "cas-register", "etcd", "kv", "queue", "set"]),
)
def test_any_history_ends_in_a_status_never_a_traceback(
    tmp_path_factory: Any, evs: list[dict[str, Any]], fmt: str, checker: str, extra: list[str],
    model: str | None,
) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("h") / f"h.{fmt}"
    path.write_text(as_text(fmt, evs), encoding="utf-8")
    args = [*extra, "--no-html"] if checker == "lin" else list(extra)
    if checker == "lin" and model is not None:
        args += ["-m", model]
    run(path, checker, args)


# -- inputs with a known defect: exit 2, naming it ----------------------------

DEFECTS = {
    "NaN": "NaN",
    "Infinity": "-Infinity",
    "overflow": "1e999",
    "huge integer": "1" + "0" * 60,
    "lone surrogate": '"\\udfff"',
    "too deep": "[" * 150 + "]" * 150,
}
FIELDS = ("value", "time_ms", "process", "type", "f")


EDN_DEFECTS = {
    "overflow": "1.0e999",
    "huge integer": "1" + "0" * 60,
    "lone surrogate": '"\\ud800"',
    "too deep": "[" * 150 + "]" * 150,
    "a vector for a keyword": "[:invoke]",
    "a map for a keyword": "{:a 1}",
}


def with_jsonl_defect(evs: list[dict[str, Any]], i: int, field: str, defect: str) -> str:
    lines = [json.dumps(e) for e in evs]
    marker = "\x00DEFECT\x00"
    lines[i] = json.dumps({**evs[i], field: marker}).replace(json.dumps(marker), DEFECTS[defect])
    return "\n".join(lines) + "\n"


def with_edn_defect(evs: list[dict[str, Any]], i: int, field: str, defect: str) -> str:
    field = {"time_ms": "time"}.get(field, field)
    if field == "value" and defect.startswith("a "):
        field = "type"  # a vector is a fine value; where a keyword belongs it is not
    lines = as_text("edn", evs).splitlines()
    pairs = {**evs[i], field: None}
    lines[i] = (
        "{"
        + ", ".join(
            f":{k} "
            + (EDN_DEFECTS[defect] if k == field else edn(v) if k == "value" else edn_field(v))
            for k, v in pairs.items()
        )
        + "}"
    )
    return "\n".join(lines) + "\n"


def with_log_defect(evs: list[dict[str, Any]], i: int, defect: str) -> str:
    if defect.startswith("a "):
        defect = "too deep"
    lines = as_text("porcupine", evs).splitlines()
    head, _, _ = lines[i].rpartition("\t")
    lines[i] = head + "\t" + EDN_DEFECTS[defect]
    return "\n".join(lines) + "\n"


@given(
    evs=events().filter(bool),
    where=st.data(),
    fmt=st.sampled_from(["jsonl", "edn", "porcupine"]),
    field=st.sampled_from(("value", "time_ms", "process", "type", "f")),
    checker=st.sampled_from(CHECKERS),
)
def test_a_history_with_a_defect_is_refused_naming_its_line(
    tmp_path_factory: Any, evs: list[dict[str, Any]], where: st.DataObject, fmt: str,
    field: str, checker: str,
) -> None:  # fmt: skip
    i = where.draw(st.integers(0, len(evs) - 1))
    if fmt == "jsonl":
        defect = where.draw(st.sampled_from(sorted(DEFECTS)))
        text = with_jsonl_defect(evs, i, field, defect)
    elif fmt == "edn":
        defect = where.draw(st.sampled_from(sorted(EDN_DEFECTS)))
        text = with_edn_defect(evs, i, field, defect)
    else:
        checker = "lin"  # a Porcupine log is a register history
        text = with_log_defect(evs, i, where.draw(st.sampled_from(sorted(EDN_DEFECTS))))
    path = tmp_path_factory.mktemp("h") / f"h.{fmt}"
    path.write_text(text, encoding="utf-8")
    args = ["-m", "register"] if checker == "lin" and fmt != "porcupine" else []
    res = run(path, checker, [*args, "--json"])
    assert res.exit_code == 2, res.output
    assert f"h.{fmt}: line {i + 1}" in res.output, res.output


# -- options ------------------------------------------------------------------

NUMBER_OPTIONS = {
    "lin": ["--timeout-s", "--explain-timeout-s", "--max-mb"],
    "bank": ["--total", "--max-mb"],
    "ledger": ["--max-mb"],
    "txn": ["--max-mb"],
    "delivery": ["--max-mb"],
}
bad_numbers = st.sampled_from(
    ["nan", "NaN", "inf", "-inf", "1e400", "-1e400", "9" * 40, "-" + "9" * 40, "x", ""]
)


@given(checker=st.sampled_from(CHECKERS), data=st.data(), value=bad_numbers)
def test_numeric_options_out_of_range_are_usage_errors(
    tmp_path_factory: Any, checker: str, data: st.DataObject, value: str
) -> None:
    option = data.draw(st.sampled_from(NUMBER_OPTIONS[checker]))
    path = tmp_path_factory.mktemp("h") / "h.jsonl"
    path.write_text(
        '{"type": "invoke", "process": 0, "f": "read", "value": null}\n'
        '{"type": "ok", "process": 0, "f": "read", "value": {"a": 1}}\n',
        encoding="utf-8",
    )
    res = run(path, checker, [option, value])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: "), res.output
    assert "invalid value for" in res.output.lower(), res.output
