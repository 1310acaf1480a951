"""The runtime as a live session's stage sees it: node state guarded from the checkers' thread.

A check that reads node state while the simulation moves would read it half
way through a message; `StateGuard` finds such a check out (`ReadsLiveState`)
so the session runs it under its lock instead.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reference.node import Node
    from reference.runtime.sim import SimRuntime

__all__ = ["ReadsLiveState", "StateGuard"]


class ReadsLiveState(BaseException):
    """Raised in a history-only check run when the check asks for live node state.

    A BaseException so that no `except Exception` inside a check swallows it:
    the session catches it and runs the check again under its lock.
    """


# --8<-- [start:state-guard]
class StateGuard:
    """The runtime as the stage sees it: the simulator's, with a guard on its nodes.

    Checks run in their own thread while the simulation moves on, so they are
    handed a copy of the history. A check that reads node state as well (a
    ledger replica's books) would read it half-way through a message: a
    dictionary changing size under it, balances updated before their transfer.
    Inside `history_only()`, asking for a node or its status raises
    `ReadsLiveState` in that thread, and the session runs that check under its
    lock, on a history and a state taken at the same instant. Every other
    caller, in any thread, gets the runtime itself.
    """

    def __init__(self, rt: SimRuntime) -> None:
        self._rt = rt
        self._local = threading.local()

    def node(self, node_id: str) -> Node | None:
        self._guard("node", node_id)
        return self._rt.node(node_id)

    def status(self, node_id: str) -> str:
        self._guard("status", node_id)
        return str(self._rt.status(node_id))

    def history_only(self) -> _HistoryOnly:
        """Within this block, this thread may not read live node state."""
        return _HistoryOnly(self._local)

    def _guard(self, what: str, node_id: str) -> None:
        if getattr(self._local, "history_only", False):
            raise ReadsLiveState(f"{what}({node_id!r})")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)


# --8<-- [end:state-guard]


class _HistoryOnly:
    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        assert not getattr(self._local, "history_only", False), "history_only does not nest"
        self._local.history_only = True

    def __exit__(self, *exc: object) -> None:
        self._local.history_only = False
