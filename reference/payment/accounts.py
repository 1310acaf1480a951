"""Account ids: strings, so a history read back from JSON compares equal.

Users are `u<uid>`; merchants `m<mid>`. A merchant whose money is split per
cell (chapter 3: every cell collects its own share, so a payment never leaves
its cell) has one sub-account per cell: `m<mid>@<cell>`. Where a payment is
settled later (the capstone's one pipeline), that sub-account is the escrow
the payment lands in, and its settled twin `m<mid>@<cell>/settled` lives
beside it, in the same cell's ledger group.
"""

from __future__ import annotations

__all__ = ["home_cell", "merchant_account", "parse_account", "settled_account", "user_account"]

SETTLED_SUFFIX = "/settled"


def user_account(uid: int) -> str:
    assert uid >= 0, uid
    return f"u{uid}"


def merchant_account(mid: int, cell: str | None = None) -> str:
    assert mid >= 0, mid
    return f"m{mid}" if cell is None else f"m{mid}@{cell}"


def settled_account(escrow: str) -> str:
    """The settled twin of a merchant's per-cell escrow account (same cell)."""
    kind, _ = parse_account(escrow)
    assert kind == "merchant" and "@" in escrow and not escrow.endswith(SETTLED_SUFFIX), escrow
    return escrow + SETTLED_SUFFIX


def home_cell(account: str) -> str:
    """The cell a merchant sub-account names (its settled twin's too); "" if none."""
    _, _, home = account.partition("@")
    return home.removesuffix(SETTLED_SUFFIX)


def parse_account(account: str) -> tuple[str, int]:
    """("user" | "merchant", id) of an account id; ValueError if malformed."""
    head, body = account[:1], account[1:].split("@", 1)[0]
    if head not in ("u", "m") or not body.isdigit():
        raise ValueError(f"not an account id: {account!r}")
    return ("user" if head == "u" else "merchant", int(body))
