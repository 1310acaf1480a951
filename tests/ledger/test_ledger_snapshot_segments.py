"""Snapshots in sealed segments: equal across replicas, restorable, cheap to repeat.

A snapshot carries the transfers as sealed segments of SEGMENT_TRANSFERS
each, encoded once when sealed, plus the open tail of those applied since.
These tests cross segment boundaries on purpose, including with a linked
chain that rolls back right at one.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from ledger_helpers import transfer

import reference.ledger.domain as domain
from reference.codec import decode, decode_value, encode, encode_value
from reference.ledger import (
    Account,
    CreateTransferResult,
    CreateTransfers,
    Ledger,
    LedgerInvariantError,
    Transfer,
    TransferFlags,
    apply,
)
from reference.ledger.records import SEGMENT_TRANSFERS, LedgerSnapshot

R = CreateTransferResult
LINKED = TransferFlags.LINKED
PENDING = TransferFlags.PENDING
POST = TransferFlags.POST_PENDING_TRANSFER
ACCOUNTS = 20
T0_MS = 1_000


def new_ledger() -> Ledger:
    ledger = Ledger(audit=True)
    ledger.create_accounts([Account(i, 1, 1) for i in range(1, ACCOUNTS + 1)], T0_MS)
    return ledger


def random_batches(seed: int, transfers: int) -> list[list[Transfer]]:
    """About `transfers` transfers in batches of up to 40: plain, pending and
    posted ones, linked chains, and chains that fail (and roll back)."""
    rng = random.Random(seed)
    batches: list[list[Transfer]] = []
    next_id, pending_ids, made = 1, [], 0
    while made < transfers:
        batch: list[Transfer] = []
        for _ in range(rng.randint(1, 40)):
            dr, cr = rng.sample(range(1, ACCOUNTS + 1), 2)
            kind = rng.random()
            if kind < 0.1 and pending_ids:
                batch.append(transfer(next_id, 0, 0, 0, flags=POST, pending_id=pending_ids.pop()))
            elif kind < 0.2:
                batch.append(transfer(next_id, dr, cr, rng.randint(1, 100), flags=PENDING))
                pending_ids.append(next_id)
            elif kind < 0.3:  # a chain of two whose second link fails: both roll back
                batch.append(transfer(next_id, dr, cr, 5, flags=LINKED))
                next_id += 1
                batch.append(transfer(next_id, dr, dr, 5))  # accounts_must_be_different
            else:
                batch.append(transfer(next_id, dr, cr, rng.randint(1, 100)))
            next_id += 1
            made += 1
        batches.append(batch)
    return batches


def apply_batches(ledger: Ledger, batches: list[list[Transfer]], t_ms: int = T0_MS) -> None:
    for offset_ms, batch in enumerate(batches, start=1):
        ledger.create_transfers(batch, t_ms + offset_ms)


def plain_transfers(first_id: int, count: int) -> list[Transfer]:
    ids = range(first_id, first_id + count)
    return [transfer(i, 1 + i % 7, 8 + i % 5, 1 + i % 13) for i in ids]


def round_trip(ledger: Ledger) -> Ledger:
    """A new ledger restored from `ledger`'s snapshot, through the codec."""
    raw = encode_value(ledger.snapshot())
    copy = Ledger(audit=True)
    copy.restore(decode_value(raw))
    assert encode_value(copy.snapshot()) == raw
    return copy


def test_two_ledgers_given_the_same_batches_make_equal_snapshots() -> None:
    batches = random_batches(seed=7, transfers=3 * SEGMENT_TRANSFERS)
    a, b = new_ledger(), new_ledger()
    apply_batches(a, batches)
    # The other replica gets its batches over the wire, as the log delivers them.
    for offset_ms, batch in enumerate(batches, start=1):
        command = decode(encode(CreateTransfers(tuple(batch), T0_MS + offset_ms)))
        apply(b, command)
    snap_a, snap_b = a.snapshot(), b.snapshot()
    assert len(snap_a.segments) >= 2
    assert snap_a == snap_b
    assert encode_value(snap_a) == encode_value(snap_b)
    # `transfers` is every applied transfer once, in apply order.
    applied = snap_a.transfers
    assert [t.id for t in applied] == sorted(t.id for t in applied)  # ids grow with the batches
    assert a.lookup_transfers([t.id for t in applied]) == applied


def test_restore_round_trips_across_a_segment_boundary() -> None:
    original = new_ledger()
    original.create_transfers(plain_transfers(1, SEGMENT_TRANSFERS - 1), T0_MS + 1)
    snap = original.snapshot()
    assert (len(snap.segments), len(snap.tail)) == (0, SEGMENT_TRANSFERS - 1)
    copy = round_trip(original)
    # Two more: the first fills the segment, which seals at the end of the batch.
    batch = plain_transfers(SEGMENT_TRANSFERS, 2)
    assert original.create_transfers(batch, T0_MS + 2) == copy.create_transfers(batch, T0_MS + 2)
    snap = original.snapshot()
    assert (len(snap.segments), len(snap.tail)) == (1, 1)
    assert copy.snapshot() == snap
    restored = round_trip(original)
    assert restored.snapshot() == snap
    # And all three carry on alike, sealing the next segment the same way.
    batch = plain_transfers(SEGMENT_TRANSFERS + 2, SEGMENT_TRANSFERS)
    results = {ledger.create_transfers(batch, T0_MS + 3) for ledger in (original, copy, restored)}
    assert results == {(R.OK,) * SEGMENT_TRANSFERS}
    snaps = {encode_value(ledger.snapshot()) for ledger in (original, copy, restored)}
    assert len(snaps) == 1
    assert len(original.snapshot().segments) == 2


def test_a_chain_rolled_back_across_a_boundary_leaves_no_trace() -> None:
    ledger = new_ledger()
    ledger.create_transfers(plain_transfers(1, SEGMENT_TRANSFERS - 2), T0_MS + 1)
    last = SEGMENT_TRANSFERS - 2
    # Two plain transfers fill the segment exactly; the chain after them
    # inserts the 1025th and 1026th transfers, then fails and rolls back.
    batch = [
        *plain_transfers(last + 1, 2),
        transfer(last + 3, 1, 2, 5, flags=LINKED),
        transfer(last + 4, 1, 2, 5, flags=LINKED),
        transfer(last + 5, 1, 1, 5),  # accounts_must_be_different
    ]
    results = ledger.create_transfers(batch, T0_MS + 2)
    assert results[:2] == (R.OK, R.OK) and R.OK not in results[2:]
    snap = ledger.snapshot()
    assert (len(snap.segments), snap.tail) == (1, ())
    sealed = decode_value(snap.segments[0])
    assert sealed[-1].id == last + 2  # the segment ends where the committed transfers end
    assert ledger.lookup_transfers([last + 3, last + 4]) == ()
    restored = round_trip(ledger)
    # The ids the chain rolled back are free for a later, successful chain.
    chain = [transfer(last + 3, 1, 2, 5, flags=LINKED), transfer(last + 4, 1, 2, 5)]
    for each in (ledger, restored):
        assert each.create_transfers(chain, T0_MS + 3) == (R.OK, R.OK)
        assert [t.id for t in each.snapshot().tail] == [last + 3, last + 4]
    assert encode_value(ledger.snapshot()) == encode_value(restored.snapshot())


def test_a_chain_rolled_back_just_before_a_boundary_seals_nothing() -> None:
    ledger = new_ledger()
    ledger.create_transfers(plain_transfers(1, SEGMENT_TRANSFERS - 1), T0_MS + 1)
    chain = [transfer(5_000, 1, 2, 5, flags=LINKED), transfer(5_001, 1, 1, 5)]
    assert ledger.create_transfers(chain, T0_MS + 2) == (
        R.LINKED_EVENT_FAILED,
        R.ACCOUNTS_MUST_BE_DIFFERENT,
    )
    snap = ledger.snapshot()
    assert (len(snap.segments), len(snap.tail)) == (0, SEGMENT_TRANSFERS - 1)
    assert round_trip(ledger).snapshot() == snap


def segmented_ledger() -> Ledger:
    ledger = new_ledger()
    ledger.create_transfers(plain_transfers(1, SEGMENT_TRANSFERS + 10), T0_MS + 1)
    return ledger


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda blob: blob[: len(blob) // 2], "segment 0 does not decode"),
        (lambda blob: b"\xff" + blob, "segment 0 does not decode"),
        # The codec refuses it first now (the field says bytes), the ledger if not.
        (lambda blob: blob.decode(), "field segments has the wrong type|segment 0 is str, not"),
        (lambda blob: encode_value(decode_value(blob)[1:]), "segment 0 is not 1024 transfers"),
        (lambda blob: encode_value((Account(1, 1, 1),) * 1024), "segment 0 is not 1024"),
        (lambda blob: blob.replace(b",", b", ", 1), "segment 0 is not in canonical form"),
    ],
    ids=["truncated", "not-utf8", "not-bytes", "short", "not-transfers", "not-canonical"],
)
def test_a_corrupted_segment_is_refused(damage: object, match: str) -> None:
    ledger = segmented_ledger()
    snap = ledger.snapshot()
    bad = dataclasses.replace(snap, segments=(damage(snap.segments[0]),))  # type: ignore[operator]
    before = encode_value(ledger.snapshot())
    with pytest.raises(ValueError, match=match):
        ledger.restore(decode_value(encode_value(bad)))
    assert encode_value(ledger.snapshot()) == before  # a refused restore changes nothing


def test_a_segment_that_decodes_but_disagrees_is_refused() -> None:
    ledger = segmented_ledger()
    snap = ledger.snapshot()
    sealed = decode_value(snap.segments[0])
    # One amount changed, canonically encoded: the balances now disagree.
    changed = (dataclasses.replace(sealed[0], amount_cents=sealed[0].amount_cents + 1),)
    cases = [
        dataclasses.replace(snap, segments=(encode_value(changed + sealed[1:]),)),
        # A segment lost: the balances still count its transfers.
        dataclasses.replace(snap, segments=()),
        # A full segment left in the tail.
        dataclasses.replace(snap, segments=(), tail=sealed + snap.tail),
        # A transfer stamped after the clock.
        dataclasses.replace(
            snap, tail=(dataclasses.replace(snap.tail[0], timestamp_ms=T0_MS + 99), *snap.tail[1:])
        ),
    ]
    for bad in cases:
        with pytest.raises(LedgerInvariantError):
            Ledger().restore(decode_value(encode_value(bad)))


def test_a_transfer_held_twice_is_refused() -> None:
    ledger = segmented_ledger()
    snap = ledger.snapshot()
    first = decode_value(snap.segments[0])[0]
    for tail in [(*snap.tail, first), (*snap.tail[:-1], first), (*snap.tail, snap.tail[0])]:
        with pytest.raises(ValueError, match=f"transfer {first.id}|twice"):
            Ledger().restore(dataclasses.replace(snap, tail=tail))


def test_segments_out_of_apply_order_are_refused() -> None:
    ledger = new_ledger()
    for step in range(2):
        batch = plain_transfers(1 + step * SEGMENT_TRANSFERS, SEGMENT_TRANSFERS)
        ledger.create_transfers(batch, T0_MS + 1 + step)
    snap = ledger.snapshot()
    assert len(snap.segments) == 2
    swapped = dataclasses.replace(snap, segments=snap.segments[::-1])
    with pytest.raises(LedgerInvariantError, match="out of order"):
        Ledger().restore(swapped)


def test_snapshot_work_does_not_grow_with_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured as work, not time: each segment is encoded once, ever, and
    every later snapshot shares its bytes instead of encoding it again."""
    encoded: list[int] = []
    encode_segment = domain.encode_value

    def counting(value: object) -> bytes:
        assert isinstance(value, tuple) and len(value) == SEGMENT_TRANSFERS
        encoded.append(len(value))
        return encode_segment(value)

    monkeypatch.setattr(domain, "encode_value", counting)
    ledger = new_ledger()
    snapshots: list[LedgerSnapshot] = []
    next_id = 1
    for step in range(6):
        batch = plain_transfers(next_id, SEGMENT_TRANSFERS // 2 + 1)
        next_id += len(batch)
        ledger.create_transfers(batch, T0_MS + 1 + step)
        snapshots.append(ledger.snapshot())
        snapshots.append(ledger.snapshot())
    sealed = (next_id - 1) // SEGMENT_TRANSFERS
    assert len(snapshots[-1].segments) == sealed == len(encoded) == 3  # once per segment
    # Every snapshot holds fewer than SEGMENT_TRANSFERS records for the codec
    # to walk; the rest is bytes, the same objects from one snapshot to the next.
    for earlier, later in itertools.pairwise(snapshots):
        assert len(later.tail) < SEGMENT_TRANSFERS
        shared = earlier.segments
        assert all(x is y for x, y in zip(shared, later.segments[: len(shared)], strict=True))
    # A restored ledger keeps the bytes it was given (it encodes a segment
    # only to check that they are canonical), so its snapshots share them too.
    restored = Ledger(audit=True)
    restored.restore(snapshots[-1])
    assert all(
        x is y for x, y in zip(restored.snapshot().segments, snapshots[-1].segments, strict=True)
    )


def test_a_segment_sealed_or_checked_before_is_not_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Restoring the same bytes again (another replica, another crash) skips the
    decode and the canonical check; bytes never seen are decoded and checked."""
    decoded: list[int] = []
    real = domain.decode_segment
    monkeypatch.setattr(domain, "_segments_known", {})
    monkeypatch.setattr(domain, "decode_segment", lambda b, i: decoded.append(i) or real(b, i))
    ledger = segmented_ledger()  # seals segment 0
    raw = encode_value(ledger.snapshot())
    assert round_trip(ledger).snapshot() == ledger.snapshot() and decoded == []
    domain._segments_known.clear()  # as in a process that never saw it
    first = Ledger(audit=True)
    first.restore(decode_value(raw))
    second = Ledger(audit=True)
    second.restore(decode_value(raw))
    assert decoded == [0]  # once: the second restore found it checked
    assert encode_value(first.snapshot()) == encode_value(second.snapshot()) == raw


def test_the_segments_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "_segments_known", {})
    for n in range(domain.SEGMENTS_REMEMBERED + 5):
        domain._remember_segment(encode_value(n), ())
    assert len(domain._segments_known) == domain.SEGMENTS_REMEMBERED
    assert encode_value(0) not in domain._segments_known  # the least recently used went


def test_a_segment_with_a_malformed_transfer_is_refused_every_time() -> None:
    """A segment's fields are checked once, as it is decoded: one refused is not
    remembered, so the same bytes are refused again, not taken as checked."""
    ledger = segmented_ledger()
    snap = ledger.snapshot()
    sealed = decode_value(snap.segments[0])
    bad_transfer = dataclasses.replace(sealed[5], amount_cents=-1)  # out of range
    bad = dataclasses.replace(
        snap, segments=(encode_value((*sealed[:5], bad_transfer, *sealed[6:])),)
    )
    for _ in range(2):
        with pytest.raises(ValueError, match="malformed transfer"):
            Ledger().restore(bad)


def test_replicas_sealing_equal_segments_share_one_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second ledger that applied the same transfers seals the first one's
    bytes (encoded once); one that applied a different transfer between the
    same first and last ids seals bytes of its own, its segment's encoding."""
    monkeypatch.setattr(domain, "_sealed_by_ends", {})
    batch = plain_transfers(1, SEGMENT_TRANSFERS + 10)
    first, second = new_ledger(), new_ledger()
    first.create_transfers(batch, T0_MS + 1)
    second.create_transfers(list(batch), T0_MS + 1)
    assert second.snapshot().segments[0] is first.snapshot().segments[0]
    other_batch = [*batch[:5], dataclasses.replace(batch[5], amount_cents=99), *batch[6:]]
    other = new_ledger()
    other.create_transfers(other_batch, T0_MS + 1)
    (blob,) = other.snapshot().segments
    assert blob != first.snapshot().segments[0]
    assert blob == encode_value(decode_value(blob)) and decode_value(blob)[5].amount_cents == 99
