"""Readers: round trips, clear errors naming the line, and fuzzing.

Every reader either returns the whole history or raises HistoryError with a
message naming what is wrong; no other exception, whatever the bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.formats import FORMATS, detect_format, load_history, parse_history
from checks.formats.edn import EdnError, Keyword, read_all
from checks.history import Event, HistoryError, decode_text, dumps_jsonl, read_jsonl, write_jsonl

JSONL = (
    '{"type": "invoke", "process": 0, "f": "write", "value": 1, "time_ms": 0.5}\n'
    '{"type": "invoke", "process": 1, "f": "read", "value": null, "time_ms": 1.0}\n'
    '{"type": "ok", "process": 0, "f": "write", "value": 1, "time_ms": 2.0}\n'
    '{"type": "ok", "process": 1, "f": "read", "value": 1, "time_ms": 3.0, "node": "n1"}\n'
)
EDN_VECTOR = """[{:type :invoke, :f :cas, :value [1 2], :process 3, :time 1000000}
 {:type :info, :f :cas, :value nil, :process 3, :time 2000000, :error :timeout}
 {:type :info, :f :partition, :value nil, :process :nemesis}]"""
EDN_LINES = (
    '{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}\n'
    '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}\n'
)
ETCD_LOG = (
    "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n"
    "INFO  jepsen.util - 4\t:invoke\t:write\t4\n"
    "INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n"
    "INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n"
)
SAMPLES = {"jsonl": JSONL, "edn": EDN_VECTOR, "porcupine-kv": EDN_LINES, "porcupine-etcd": ETCD_LOG}


def test_jsonl_round_trip(tmp_path: Path) -> None:
    events = parse_history(JSONL).events
    path = tmp_path / "h.jsonl"
    write_jsonl(path, events)
    again = read_jsonl(path)
    assert again == events
    assert again[3].extra == {"node": "n1"}
    assert dumps_jsonl(again) == dumps_jsonl(events)


def test_writer_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(HistoryError, match="no JSON form"):
        dumps_jsonl([Event("invoke", 0, "write", object())])
    with pytest.raises(HistoryError, match="shadow"):
        dumps_jsonl([Event("invoke", 0, "write", 1, extra={"type": "x"})])


def test_formats_are_detected_by_content() -> None:
    assert detect_format(JSONL) == "jsonl"
    assert detect_format(EDN_VECTOR) == "edn"
    assert detect_format(EDN_LINES) == "edn"
    assert detect_format(ETCD_LOG) == "porcupine-etcd"
    assert detect_format("hello") is None


def test_edn_history_reads_jepsen_maps() -> None:
    h = parse_history(EDN_VECTOR)
    assert h.format == "edn"
    first, info, nemesis = h.events
    assert (first.type, first.process, first.f, first.value) == ("invoke", 3, "cas", [1, 2])
    assert first.time_ms == 1.0  # :time is in nanoseconds
    assert info.extra == {"error": "timeout"}
    assert nemesis.process == "nemesis"
    ops = h.operations()
    assert len(ops) == 1 and ops[0].type == "info"


def test_etcd_log_reads_porcupine_lines() -> None:
    h = parse_history(ETCD_LOG)
    assert [e.type for e in h.events] == ["invoke", "invoke", "fail", "info"]
    assert h.events[0].value == (3, 0)
    assert h.events[3].value == "timed-out"


def test_edn_reader_reads_what_jepsen_writes() -> None:
    forms = [f for _, f in read_all('#{1 2} \\a "q\\"x" :ns/kw -4 2.5 nil true #_ 9 ; c\n (1)')]
    assert forms == [frozenset({1, 2}), "a", 'q"x', Keyword("ns/kw"), -4, 2.5, None, True, [1]]
    with pytest.raises(EdnError, match="line 2"):
        read_all("{:a 1\n :b}")


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        (JSONL.replace('"ok", "process": 0', '"done", "process": 0'), None, "line 3: type"),
        (JSONL + '{"type": "ok", "process": 7, "f": "read"}\n', None, "line 5: ok read of"),
        (JSONL[:-20], None, "line 4: not valid JSON"),
        (JSONL.replace('"f": "read", "value": 1', '"f": "write", "value": 1'), None, "line 4"),
        (EDN_LINES + "{:process 0, :type :ok}\n", "edn", "line 3: :f"),
        (EDN_VECTOR[:-1], "edn", "missing"),
        (ETCD_LOG + "INFO  jepsen.util - 2\t:ok\t:read\n", None, "line 5: not a jepsen.util"),
        ("", None, "empty history"),
        ("\x00garbage", None, "cannot tell the format"),
    ],
)
def test_malformed_input_names_the_line(text: str, fmt: str | None, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        parse_history(text, fmt)


def test_missing_file_is_a_history_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read"):
        load_history(tmp_path / "nope.jsonl")


def _read_bytes(data: bytes, fmt: str | None) -> None:
    """The contract: a whole history, or HistoryError; nothing else escapes."""
    try:
        loaded = parse_history(decode_text(data, "<fuzz>"), fmt, "<fuzz>")
    except HistoryError as exc:
        assert str(exc), "an error says what is wrong"
        return
    assert loaded.events, "a history read is never empty"
    loaded.operations()  # and it pairs up: the reader checked that


@settings(max_examples=300)
@given(data=st.binary(max_size=300), fmt=st.sampled_from([None, *FORMATS]))
def test_random_bytes_give_history_errors(data: bytes, fmt: str | None) -> None:
    _read_bytes(data, fmt)


@settings(max_examples=300)
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    cut=st.integers(0, 400),
    length=st.integers(0, 12),
    junk=st.one_of(
        st.binary(max_size=6),
        # Characters that mean something to the formats: likelier to get far.
        st.text(alphabet='{}[]()#:;"\\ ,\n\t0123456789-.abcnilNMe_\u00e9\x00', max_size=12).map(
            str.encode
        ),
    ),
    fmt_given=st.booleans(),
)
def test_corrupted_files_give_history_errors(
    name: str, cut: int, length: int, junk: bytes, fmt_given: bool
) -> None:
    raw = SAMPLES[name].encode()
    cut = min(cut, len(raw))
    corrupted = raw[:cut] + junk + raw[cut + length :]
    _read_bytes(corrupted, name if fmt_given else None)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_truncated_mid_line_is_never_read_as_a_history(name: str) -> None:
    """A file cut inside its last event is an error, not a shorter history."""
    text = SAMPLES[name].rstrip("\n")
    last_line_start = text.rfind("\n") + 1
    for cut in range(last_line_start + 1, len(text) - 1):
        truncated = text[:cut]
        try:
            loaded = parse_history(truncated, name)
        except HistoryError:
            continue
        # Some cuts leave a well-formed event (a shorter number): never one
        # that silently drops the event.
        assert len(loaded.events) == len(parse_history(text, name).events)
