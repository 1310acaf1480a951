"""Messages the SQL store speaks besides its procedures' own requests."""

from __future__ import annotations

from typing import Any

from reference.codec import Message, message

__all__ = ["Promote", "PromoteAck", "ReplicateAck", "ReplicateBatch", "StoreRejected"]


@message
class StoreRejected(Message):
    """The store refused a request before running it (no transaction, no effect)."""

    req_id: str
    reason: str  # "expired" (its deadline had passed) | "not-primary" (a standby)
    node: str


@message
class ReplicateBatch(Message):
    """Commit-log records [start_index, start_index + len(records)) for a standby."""

    start_index: int
    records: tuple[Any, ...]  # each: a tuple of (sql, params) writes


@message
class ReplicateAck(Message):
    """The standby holds (durably) every record before `next_index`."""

    next_index: int


@message
class Promote(Message):
    """Failover: a standby becomes the primary of its data from now on."""

    reason: str


@message
class PromoteAck(Message):
    node: str
    next_index: int  # how much of the old primary's log it had received
