"""Soundness against an oracle: the checker agrees with brute force, every time.

Histories are generated from a sequential implementation (linearizable by
construction), then some are mutated (one observed outcome changed). On
these small histories, the WGL search with its cache, its reductions and
P-compositionality must give exactly the verdict of trying every order.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lin_gen import MODEL_NAMES, brute_force, histories, mutate

from checks.history import pair_operations
from checks.lin import check_operations, model_named

SEEN: Counter[tuple[str, bool]] = Counter()


@pytest.mark.parametrize("model", MODEL_NAMES)
@settings(max_examples=60)
@given(data=st.data())
def test_generated_histories_are_linearizable(model: str, data: st.DataObject) -> None:
    events = data.draw(histories(model))
    m = model_named(model)
    assert brute_force(events, m), "the generator builds linearizable histories"
    result = check_operations(pair_operations(events), m, timeout_s=30)
    assert result.valid is True


@pytest.mark.parametrize("model", MODEL_NAMES)
@settings(max_examples=120)
@given(data=st.data())
def test_checker_agrees_with_brute_force_on_mutated_histories(
    model: str, data: st.DataObject
) -> None:
    events = mutate(data.draw, data.draw(histories(model, n_procs=3, n_ops=7)))
    m = model_named(model)
    expected = brute_force(events, m)
    result = check_operations(pair_operations(events), m, timeout_s=30)
    assert result.valid is expected
    SEEN[(model, expected)] += 1


def test_mutations_produced_both_verdicts() -> None:
    """The agreement test above means something only if both verdicts occurred."""
    if not SEEN:
        pytest.skip("run together with the agreement test")
    for model in MODEL_NAMES:
        assert SEEN[(model, True)] > 0, f"{model}: no linearizable mutant"
        assert SEEN[(model, False)] > 0, f"{model}: no non-linearizable mutant"


@pytest.mark.slow
@pytest.mark.parametrize("model", MODEL_NAMES)
@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_checker_agrees_with_brute_force_exhaustively(model: str, data: st.DataObject) -> None:
    """The long run: more processes, more operations, many more examples."""
    events = mutate(data.draw, data.draw(histories(model, n_procs=4, n_ops=8)))
    m = model_named(model)
    result = check_operations(pair_operations(events), m, timeout_s=60)
    assert result.valid is brute_force(events, m)
