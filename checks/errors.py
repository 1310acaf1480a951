"""The error every reader of a history raises on one it cannot take.

Its own file because both `checks.history` (pairing, reading) and
`checks.values` (the values inside events, which `checks.history` uses)
raise it; `checks.history` re-exports it, where callers look for it.
"""

from __future__ import annotations

__all__ = ["HistoryError"]


class HistoryError(ValueError):
    """A history that cannot be read or does not make sense as a history."""
