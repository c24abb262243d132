"""Small objects sent whole travel together in one compressed message to a peer that
takes batches, and one by one to a peer that does not; objects whole in one piece go
without their id, which the receiver computes; acknowledgements count every piece at
its full size, however it travelled."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from eurec4a_nt.errors import BadInput
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.sync.core import Peer
from eurec4a_nt.sync.handles import LIMIT, Handles
from eurec4a_nt.sync.outbox import Priority
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.session import Session
from eurec4a_nt.sync.wire import BATCH_BYTES, RAW, Piece, batch, batch_size, read_ack, unbatch


class Recorder:
    """A connection that keeps what is sent on it."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def send_str(self, text: str) -> None:
        self.sent.append(text)


def records(n: int) -> list[bytes]:
    """``n`` file records, as small objects a link sends after each other."""
    return [json.dumps({"type": "file", "size": 20480, "blocks": [[ObjectId.of(b"%d" % k), 0, 20480]]},
                       separators=(",", ":")).encode() for k in range(n)]


async def nothing_to_act_on(session: Session, action: object) -> None:
    raise AssertionError(f"nothing to act on: {action}")


async def keep_nothing(session: Session, action: object) -> None:
    pass


def send_all(tmp_path: Path, objects: list[bytes], batches: bool) -> list[bytes | str]:
    """What a session sends for ``objects`` queued at once (a peer that takes batches or not)."""
    store = LocalStore(tmp_path / f"store-{batches}")
    oids = [store.put(o) for o in objects]

    async def run() -> list[bytes | str]:
        core = Peer("OPS", None, {"heads": {}}, Partials(), batches=batches)
        core.outbox.queue(oids, Priority.BULK)
        ws = Recorder()
        session = Session(core, ws, store, nothing_to_act_on, lambda session, sent, received: None)  # type: ignore[arg-type]
        session.sender.pacer = None  # nothing acknowledges here
        writer = asyncio.create_task(session.sender.run())
        async with asyncio.timeout(10):
            while core.outbox.queued or session.sender.batched:
                await asyncio.sleep(0.01)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        return ws.sent

    return asyncio.run(run())


def test_small_objects_go_together_to_a_peer_that_takes_batches(tmp_path: Path) -> None:
    objects = records(40)
    one_by_one = send_all(tmp_path, objects, batches=False)
    together = send_all(tmp_path, objects, batches=True)
    assert len(one_by_one) == 40 and all(isinstance(m, bytes) and m[:1] == b"P" for m in one_by_one)
    assert len(together) == 1 and isinstance(together[0], bytes) and together[0][:1] == b"M"
    inner = unbatch(together[0])
    assert sorted(p.oid for p in inner) == sorted(ObjectId.of(o) for o in objects)
    assert {p.oid: p.data for p in inner} == {Piece.unpack(m).oid: Piece.unpack(m).data  # type: ignore[arg-type]
                                             for m in one_by_one}
    assert batch_size(together[0]) == sum(map(len, one_by_one))  # what the receiver acknowledges
    assert len(together[0]) < 0.4 * sum(map(len, one_by_one))


def test_a_whole_object_travels_without_its_id(tmp_path: Path) -> None:
    blob = os.urandom(20_000)  # too large for a batch, whole in one piece
    plain, = send_all(tmp_path, [blob], batches=False)
    compact, = send_all(tmp_path, [blob], batches=True)
    assert isinstance(plain, bytes) and isinstance(compact, bytes)
    assert len(plain) - len(compact) == 36 and compact[2:] == blob
    piece = Piece.unpack(compact)
    assert piece.oid == ObjectId.of(blob) and piece.size == len(plain)  # acknowledged at its full size
    assert Piece.unpack(plain) == piece


def test_a_batch_is_sent_when_it_is_full(tmp_path: Path) -> None:
    objects = [os.urandom(3000) for _ in range(200)]  # 600 KB of small objects: several batches
    sent = send_all(tmp_path, objects, batches=True)
    assert len(sent) > 1
    assert all(batch_size(m) <= BATCH_BYTES + 4096 for m in sent if isinstance(m, bytes) and m[:1] == b"M")
    got = [p.oid for m in sent if isinstance(m, bytes) for p in (unbatch(m) if m[:1] == b"M" else [Piece.unpack(m)])]
    assert sorted(got) == sorted(ObjectId.of(o) for o in objects)


def test_a_receiver_acknowledges_pieces_at_their_full_size(tmp_path: Path) -> None:
    objects = records(5)
    full = [m for m in send_all(tmp_path, objects, batches=False) if isinstance(m, bytes)]
    pieces = [Piece.unpack(m) for m in full]

    async def run() -> list[bytes | str]:
        core = Peer("OPS", None, {"heads": {}}, Partials())
        session = Session(core, Recorder(), LocalStore(tmp_path / "in"), keep_nothing,  # type: ignore[arg-type]
                          lambda session, sent, received: None)
        await session._on_batch(batch(pieces[:3]))
        for piece in pieces[3:]:
            await session._on_message(piece.pack(compact=True))
        return [session.sender.control.get_nowait() for _ in range(session.sender.control.qsize())]

    acks = [read_ack(a) for a in asyncio.run(run()) if isinstance(a, bytes)]
    assert acks == [sum(map(len, full[:3])), sum(map(len, full[:4])), sum(map(len, full))]


@pytest.mark.parametrize("damage", [b"M", b"M\x05", b"M\xff\xff\xff\xff\x0f" + b"x" * 10,
                                    b"M\x10" + b"\x28\xb5\x2f\xfd" + b"\x00" * 20])
def test_damaged_batches_are_refused(damage: bytes) -> None:
    with pytest.raises(BadInput):
        unbatch(damage)


def test_a_batch_that_expands_past_its_claim_is_refused() -> None:
    message = batch([Piece(ObjectId.of(b"\x00" * 40000), RAW, None, 0, 40000, b"\x00" * 40000)])
    with pytest.raises(BadInput):
        unbatch(b"M\x64" + message[4:])  # claims 100 bytes, holds 40,002


def test_unknown_piece_flags_are_refused() -> None:
    with pytest.raises(BadInput):
        Piece.unpack(b"P\x20" + b"\x00" * 40)


def _sent_in_pieces(oid: ObjectId, payload: bytes, size: int, encoding: int = RAW) -> list[Piece]:
    return [Piece(oid, encoding, None, o, len(payload), payload[o:o + size]) for o in range(0, len(payload), size)]


def test_later_pieces_of_an_object_name_it_by_number() -> None:
    a, b = os.urandom(100_000), os.urandom(50_000)
    pa, pb = _sent_in_pieces(ObjectId.of(a), a, 16384), _sent_in_pieces(ObjectId.of(b), b, 16384)
    order = [pa[0], pa[1], pb[0], pa[2], pb[1], pb[2], pb[3], *pa[3:]]  # interleaved, as priorities do
    sending, receiving = Handles(), Handles()
    messages = [sending.pack(p) for p in order]
    assert [m[:1] for m in messages].count(b"Q") == len(order) - 2  # only the first piece of each names it
    assert all(len(m) - len(p.data) <= 7 for m, p in zip(messages, order, strict=True) if m[:1] == b"Q")
    got = [receiving.unpack(m) for m in messages]
    assert got == order
    assert sum(p.size for p in got) == sum(len(p.pack()) for p in order)  # acknowledged at full size
    assert not sending._heads and not receiving._heads  # every number given up with its last piece


def test_numbers_stay_alike_past_the_limit_and_refuse_strangers() -> None:
    sending, receiving = Handles(), Handles()
    objects = [os.urandom(40_000) for _ in range(LIMIT + 5)]
    firsts = [_sent_in_pieces(ObjectId.of(o), o, 16384)[0] for o in objects]  # transfers left open
    for p in firsts:
        assert receiving.unpack(sending.pack(p)) == p
    late = _sent_in_pieces(ObjectId.of(objects[0]), objects[0], 16384)[1]  # its number was given up
    message = sending.pack(late)
    assert message[:1] == b"P" and receiving.unpack(message) == late
    with pytest.raises(BadInput):
        receiving.unpack(b"Q\x7f\x00" + b"x" * 10)  # a number never opened
    with pytest.raises(BadInput):
        Handles().unpack(firsts[3].pack(number=7))  # opens a number out of turn
