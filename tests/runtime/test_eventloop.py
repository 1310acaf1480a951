"""The runtime's choice of event loop (reference/runtime/eventloop.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Any

import pytest

from reference.runtime import eventloop

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.EVENT_LOOP_ENV, "asyncio")
    assert eventloop.loop_name() == "asyncio"
    loop = eventloop.new_event_loop()
    try:
        assert loop.__class__.__module__.startswith("asyncio")
    finally:
        loop.close()


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.EVENT_LOOP_ENV, raising=False)
    assert eventloop.loop_name() == "uvloop"
    loop = eventloop.new_event_loop()
    try:
        assert loop.__class__.__module__.startswith("uvloop")
        # The runtime schedules on the cluster's epoch, a time.monotonic() reading:
        # the loop's clock must be that clock (to libuv's millisecond).
        assert abs(loop.time() - time.monotonic()) < 0.01
    finally:
        loop.close()


def test_falls_back_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv(eventloop.EVENT_LOOP_ENV, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert eventloop.loop_name() == "asyncio"
    assert eventloop.loop_factory() is asyncio.new_event_loop
