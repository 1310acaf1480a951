"""Every history of Porcupine's corpus gets exactly its expected verdict,
from both search engines (the Python reference and the compiled helper)."""

from __future__ import annotations

import pytest

from checks.formats import load_history
from checks.lin import check_operations, model_named
from checks.lin.corpus import ENV_VAR, corpus_dir, corpus_entries

ROOT = corpus_dir()
pytestmark = pytest.mark.skipif(
    not (ROOT / "verdicts.json").is_file(),
    reason=(
        f"no Porcupine corpus at {ROOT}: put github.com/anishathalye/porcupine's test_data "
        f"there (jepsen/, kv/ and verdicts.json; the default is ../shared/corpora/porcupine "
        f"beside the repository), or point {ENV_VAR} at it"
    ),
)


def entries() -> list[object]:
    if not (ROOT / "verdicts.json").is_file():
        return []
    return [pytest.param(e, id=e.path.name) for e in corpus_entries(ROOT)]


def test_corpus_is_complete() -> None:
    found = corpus_entries(ROOT)
    assert sum(e.family == "etcd" for e in found) == 102
    assert sum(e.family == "kv" for e in found) == 6
    assert {e.linearizable for e in found} == {True, False}


@pytest.mark.parametrize("entry", entries())
def test_corpus_verdict(entry, lin_engine: str) -> None:  # type: ignore[no-untyped-def]
    ops = load_history(entry.path).operations()
    result = check_operations(ops, model_named(entry.model), timeout_s=120)
    assert result.engine == lin_engine
    assert result.valid is entry.linearizable


def test_every_corpus_failure_is_explained() -> None:
    from checks.explain import explain

    failing = [e for e in corpus_entries(ROOT) if not e.linearizable and e.family == "kv"]
    for e in failing:
        model = model_named(e.model)
        result = check_operations(load_history(e.path).operations(), model, timeout_s=120)
        assert result.failing is not None
        ex = explain(result.failing, model, budget_s=5)
        assert ex.stuck is not None and ex.witness
        assert len(ex.calls) <= len(result.failing.calls)
