"""How big a history file may be: held whole in memory, so capped.

The checkers need every event at once. Reading JSON Lines a line at a time,
memory holds about 3-4x the file's size (measured on a generated bank
history by tests/checks/test_history_memory.py); a file over the cap is
refused with a message naming the option that raises it, never half-read.
"""

from __future__ import annotations

import os

HISTORY_MB_MAX_DEFAULT = 256
ENV_HISTORY_MB_MAX = "D11_HISTORY_MAX_MB"
MAX_MB_MAX = 1 << 20  # a terabyte: the cap on the cap
MAX_MB_HELP = (
    f"Refuse a history file bigger than this many MB (default {HISTORY_MB_MAX_DEFAULT}, "
    f"or ${ENV_HISTORY_MB_MAX}); checking takes about 4x the file size in memory"
)


def history_mb_max() -> int:
    """The size cap: $D11_HISTORY_MAX_MB when it is a sensible number, else the default."""
    raw = os.environ.get(ENV_HISTORY_MB_MAX, "").strip()
    if raw.isdigit() and 0 < int(raw) <= MAX_MB_MAX:
        return int(raw)
    return HISTORY_MB_MAX_DEFAULT
