"""Moved: this path only re-exports, so older imports keep working.

Chapter 4's per-wallet linearizability check lives in
`chapters/ch4_paxos/wallets.py`. New code imports from there.
"""

from __future__ import annotations

from chapters.ch4_paxos.wallets import check_wallets_linearizable, wallet_operations

__all__ = ["check_wallets_linearizable", "wallet_operations"]
