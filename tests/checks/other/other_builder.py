"""A small history builder for checker tests: events get indices and times."""

from __future__ import annotations

from typing import Any

from checks.history import Event


class History:
    """Append events in order; each gets the next index and time_ms."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, process: int | str, f: str, value: Any) -> History:
        i = len(self.events)
        self.events.append(Event(type_, process, f, value, time_ms=float(i), index=i))  # type: ignore[arg-type]
        return self

    def invoke(self, p: int | str, f: str, value: Any = None) -> History:
        return self.add("invoke", p, f, value)

    def ok(self, p: int | str, f: str, value: Any = None) -> History:
        return self.add("ok", p, f, value)

    def fail(self, p: int | str, f: str, value: Any = None) -> History:
        return self.add("fail", p, f, value)

    def info(self, p: int | str, f: str, value: Any = None) -> History:
        return self.add("info", p, f, value)

    def op(
        self, p: int | str, f: str, value: Any, result: Any = None, type_: str = "ok"
    ) -> History:
        """An operation with nothing in between: invoke then completion."""
        self.invoke(p, f, value)
        return self.add(type_, p, f, value if result is None else result)
