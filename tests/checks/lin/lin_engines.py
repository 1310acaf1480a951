"""Test helper: the compiled search may be missing here, never under CI."""

from __future__ import annotations

import os

import pytest

from checks.lin import native

ENGINES = ("python", "native")


def require_native() -> None:
    """Skip (fail under CI) when the compiled helper is not importable."""
    if native.helper() is not None:
        return
    why = (
        f"the compiled search ({native.MODULE}) is not installed: "
        ".venv/bin/pip install ./native/lincheck (needs Rust's cargo)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {why}")
    pytest.skip(why)
