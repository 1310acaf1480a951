"""Account ids: strings, so a history read back from JSON compares equal.

Users are `u<uid>`; merchants `m<mid>`. A merchant whose money is split per
cell (chapter 3: every cell collects its own share, so a payment never leaves
its cell) has one sub-account per cell: `m<mid>@<cell>`.
"""

from __future__ import annotations

__all__ = ["merchant_account", "parse_account", "user_account"]


def user_account(uid: int) -> str:
    assert uid >= 0, uid
    return f"u{uid}"


def merchant_account(mid: int, cell: str | None = None) -> str:
    assert mid >= 0, mid
    return f"m{mid}" if cell is None else f"m{mid}@{cell}"


def parse_account(account: str) -> tuple[str, int]:
    """("user" | "merchant", id) of an account id; ValueError if malformed."""
    head, body = account[:1], account[1:].split("@", 1)[0]
    if head not in ("u", "m") or not body.isdigit():
        raise ValueError(f"not an account id: {account!r}")
    return ("user" if head == "u" else "merchant", int(body))
