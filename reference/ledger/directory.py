"""Where each account's money lives on a sharded ledger: which Paxos group, which ledger id.

Chapter 4 builds one per stage (its cells' groups), chapter 5 one for its
single group; the ledger front (`reference.ledger.front`) routes by it.

In chapter 3 a cell's data lived on the cell's own store, and failing a cell
over meant *moving* that data to a standby (or losing what had not been
copied yet). In chapter 4 a cell's data lives in a Paxos group whose replicas
sit in three cities, so the data never moves: only the leader does, and the
routing rules decide which gateway talks to it. The map from an account to
its group is therefore static, fixed at build time from the uid ranges the
cells were first given: `Directory.group_of(account)`.

The ledger speaks integer ids (TigerBeetle's u128), the payment clients
speak account names (`u17`, `m3@hz-1`). The directory holds both directions,
and the genesis state every replica starts from: one account per user and
merchant sub-account, funded from the group's treasury by opening transfers.
Shadow twins (`pt_u17`, chapter 7's load-test accounts) are accounts like
any other, in their production twin's group: a directory built from
balances that include them holds them, and genesis opens them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reference.gateway.router import RoutingRules
from reference.ledger import Account, AccountFlags, Transfer
from reference.ledger.machine import LedgerMachine
from reference.ledger.records import ID_MAX
from reference.ledger.results import CreateAccountResult, CreateTransferResult
from reference.payment.accounts import home_cell, parse_account
from reference.tracing.shadow import production_account

__all__ = ["LEDGER_CNY", "Directory", "transfer_id"]

LEDGER_CNY = 156  # the ledger (currency) every account is in: ISO 4217 CNY
CODE_WALLET, CODE_MERCHANT, CODE_TREASURY = 1, 2, 3
CODE_PAYMENT, CODE_OPENING = 10, 11
TREASURY_ID = 1  # in every group: the account the opening balances come from
_FIRST_ACCOUNT_ID = 1_000


def transfer_id(payment_id: str) -> int:
    """The ledger transfer id of a payment: a stable 128-bit hash of its id.

    The same payment id gives the same transfer id on every front and after
    every failover, which is what makes a retry through another city safe.
    """
    digest = hashlib.blake2b(payment_id.encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") % ID_MAX + 1  # never 0, never past ID_MAX


@dataclass(frozen=True)
class Directory:
    """Accounts -> (group, ledger id), and each group's genesis balances."""

    rules: RoutingRules  # the routing rules at build time: the static data placement
    groups: Mapping[str, tuple[str, ...]]  # cell -> the replicas of its group (leader first)
    ids: Mapping[str, int]  # account name -> ledger account id
    opening_cents: Mapping[str, int]  # account name -> opening balance
    members: Mapping[str, tuple[str, ...]]  # cell -> the accounts its group holds
    names: Mapping[int, str]  # ledger account id -> account name

    @classmethod
    def build(
        cls,
        rules: RoutingRules,
        groups: Mapping[str, Sequence[str]],
        opening_cents: Mapping[str, int],
    ) -> Directory:
        ids = {name: _FIRST_ACCOUNT_ID + i for i, name in enumerate(sorted(opening_cents))}
        members: dict[str, list[str]] = {cell: [] for cell in groups}
        directory = cls(rules, {c: tuple(r) for c, r in groups.items()}, ids, {}, {}, {})
        for name in sorted(ids):
            members[directory.group_of(name)].append(name)
        return cls(
            rules,
            directory.groups,
            ids,
            dict(opening_cents),
            {cell: tuple(names) for cell, names in members.items()},
            {i: name for name, i in ids.items()},
        )

    def group_of(self, account: str) -> str:
        """The cell whose Paxos group holds `account` (users by their first uid range).

        A shadow account (`pt_u17`, chapter 7) lives in its production twin's
        group: a load-test payment is one transfer in one group, as production's."""
        account = production_account(account)
        kind, ident = parse_account(account)
        if kind == "user":
            return self.rules.buckets[ident % len(self.rules.buckets)]
        cell = home_cell(account)  # a settled account lives beside its escrow
        assert cell in self.groups, f"{account}: merchant sub-accounts name their cell"
        return cell

    def group_of_transfer(self, transfer: Transfer) -> str:
        """The group a transfer is proposed to: its debited account's. Both of its
        accounts live there (a payment's merchant sub-account is the payer's cell's,
        a settlement's settled account its escrow's): one transfer, one group."""
        return self.group_of(self.names[transfer.debit_account_id])

    def accounts_of(self, group: str) -> tuple[str, ...]:
        return self.members[group]

    # --8<-- [start:genesis]
    def genesis(self, group: str, *, audit: bool = False) -> LedgerMachine:
        """The ledger every replica of `group` starts from, identical on each.

        Opening balances are transfers from the group's treasury, so the
        double-entry invariant holds from the first instant: the treasury's
        debits are every wallet's credits. Wallets may not overdraw
        (DEBITS_MUST_NOT_EXCEED_CREDITS); the treasury may.
        """
        machine = LedgerMachine(audit=audit)
        ledger = machine.ledger
        mine = self.accounts_of(group)
        accounts = [Account(TREASURY_ID, LEDGER_CNY, CODE_TREASURY)]
        for name in mine:
            is_user = parse_account(production_account(name))[0] == "user"
            flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS if is_user else AccountFlags.NONE
            code = CODE_WALLET if is_user else CODE_MERCHANT
            accounts.append(Account(self.ids[name], LEDGER_CNY, code, flags=int(flags)))
        results = ledger.create_accounts(accounts, 0)
        assert all(r == CreateAccountResult.OK for r in results), results
        openings = [
            Transfer(
                id=self.ids[name],
                debit_account_id=TREASURY_ID,
                credit_account_id=self.ids[name],
                amount_cents=self.opening_cents[name],
                ledger=LEDGER_CNY,
                code=CODE_OPENING,
            )
            for name in mine
            if self.opening_cents[name] > 0
        ]
        results = ledger.create_transfers(openings, 0)
        assert all(r == CreateTransferResult.OK for r in results), results
        return machine

    # --8<-- [end:genesis]

    def balances(self, accounts: Sequence[Account]) -> dict[str, int]:
        """Account name -> balance (credits - debits, posted), from looked-up accounts."""
        return {
            self.names[a.id]: a.credits_posted_cents - a.debits_posted_cents
            for a in accounts
            if a.id in self.names
        }
