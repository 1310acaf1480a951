"""The `lin_engine` fixture: a test runs once per search engine.

"python" is the reference (checks/lin/search.py); "native" the compiled
helper (native/lincheck). Where the helper is not installed the native runs
skip, saying how to install it; under CI (CI=true) they fail instead: CI
installs it, so its absence there is a broken build, not a missing option.
"""

from __future__ import annotations

import pytest
from lin_engines import ENGINES, require_native

from checks.lin import native


@pytest.fixture(params=ENGINES)
def lin_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine this run forces through D11_LIN_ENGINE."""
    engine = str(request.param)
    if engine == "native":
        require_native()
    monkeypatch.setenv(native.ENGINE_VAR, engine)
    return engine
