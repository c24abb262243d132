"""Sync planning without sockets: what to ask for, in which order, with which delta
bases; how pieces are cut, assembled and resumed; how reconnections back off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wire_kit import pieces

from eurec4a_nt import publish
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadInput, Corrupt
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.sync import plan
from eurec4a_nt.sync.handshake import retry_delay
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.policy import Selection, Subscription
from eurec4a_nt.sync.wire import DELTA, PIECE, RAW, ZSTD, Piece, decode, encode


def entry(name: str, topics: tuple[str, ...], size: int, published: str) -> Entry:
    return Entry(name, "file", ObjectId.of(name.encode()), size, "binary", topics, published=published,
                 site="RV-Meteor")


def test_priority_puts_listed_topics_first_then_small_then_new() -> None:
    order = ("planning", "quicklook")
    big_ql = entry("a", ("quicklook",), 5_000_000, "2020-02-01T10:00:00Z")
    small_ql = entry("b", ("quicklook",), 1_000, "2020-02-01T09:00:00Z")
    plan_doc = entry("c", ("planning",), 9_000_000, "2020-01-01T00:00:00Z")
    raw_new = entry("d", ("raw",), 100, "2020-02-02T00:00:00Z")
    raw_old = entry("e", ("raw",), 100, "2020-01-02T00:00:00Z")
    ranked = sorted([raw_old, big_ql, raw_new, small_ql, plan_doc], key=lambda e: plan.priority_key(e, order))
    assert [e.name for e in ranked] == ["c", "b", "a", "d", "e"]


def test_delta_base_is_the_held_old_block_overlapping_most() -> None:
    a, b, c, n1, n2 = (ObjectId.of(x) for x in (b"a", b"b", b"c", b"n1", b"n2"))
    old = [(a, 0, 100), (b, 100, 100), (c, 200, 100)]
    new = [(n1, 0, 120), (b, 120, 100), (n2, 220, 90)]
    held = {a, c}.__contains__
    bases = plan.delta_bases(new, old, held)
    assert bases == {n1: a, n2: c}  # b is unchanged; b would overlap n1 but is not held


@pytest.fixture
def meteor(tmp_path: Path) -> SiteStore:
    return SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")


def copy_objects(source: SiteStore, target: LocalStore, entry: Entry, skip: set[ObjectId] = frozenset()) -> None:
    from eurec4a_nt.tree import walk

    for node in walk(entry, source.objects):
        if node.id not in skip:
            target.put(source.objects.get(node.id), node.id)


def test_missing_asks_for_a_new_entry_deep_and_a_new_version_by_its_root(meteor: SiteStore, tmp_path: Path) -> None:
    data = os.urandom(6 << 20)
    path = tmp_path / "series.bin"
    path.write_bytes(data)
    first = publish(path, "raw/series.bin", store=meteor.path)
    path.write_bytes(data[:5000] + b"inserted" + data[5000:])
    second = publish(path, "raw/series.bin", store=meteor.path)
    receiver = LocalStore(tmp_path / "receiver")

    wants = plan.missing(first, None, receiver)
    assert wants.deep == [first.root] and not wants.shallow  # nothing of it here: all of it at once

    copy_objects(meteor, receiver, first)
    assert plan.complete(first, receiver)
    wants = plan.missing(second, first, receiver)
    assert wants.shallow == [second.root] and not wants.deep  # the root first, to learn the blocks

    receiver.put(meteor.objects.get(second.root), second.root)
    wants = plan.missing(second, first, receiver)
    assert 1 <= len(wants.shallow) <= 2  # only the changed block(s)
    assert set(wants.bases) == set(wants.shallow)  # each with a block of the first version to delta against
    assert all(receiver.has(base) for base in wants.bases.values())


def test_missing_for_a_zarr_entry_names_changed_chunks_only(meteor: SiteStore, tmp_path: Path) -> None:
    from eurec4a_nt.demokit import sampledata

    day = publish(sampledata.timeseries(seed=1, hours=24).chunk(time=36), "model/bco.zarr", store=meteor.path)
    more = publish(sampledata.timeseries(seed=1, hours=25).chunk(time=36), "model/bco.zarr", store=meteor.path)
    receiver = LocalStore(tmp_path / "receiver")
    copy_objects(meteor, receiver, day)
    receiver.put(meteor.objects.get(more.root), more.root)
    wants = plan.missing(more, day, receiver)
    total = len(meteor.objects.get(more.root))  # the manifest lists every key
    assert wants.shallow and len(wants.shallow) < total / 100


def test_held_below_lists_what_a_sender_following_a_root_may_skip(meteor: SiteStore, tmp_path: Path) -> None:
    from eurec4a_nt.manifests import FileRecord
    from eurec4a_nt.tree import held_below

    folder = tmp_path / "flight"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(12 << 20))
    (folder / "small.txt").write_bytes(b"notes")
    entry = publish(folder, "aircraft/flight", store=meteor.path)
    manifest = meteor.objects.get(entry.root)
    receiver = LocalStore(tmp_path / "receiver")
    copy_objects(meteor, receiver, entry)
    everything = set(held_below(entry.root, manifest, receiver))
    assert entry.root not in everything and len(everything) >= 4  # two files, a record, its blocks

    big = next(oid for oid in everything if meteor.objects.get(oid).startswith(b'{"type":"file"'))
    lost = FileRecord.from_bytes(meteor.objects.get(big)).blocks[0].id
    receiver.delete(lost)
    assert receiver.get(entry.root) == manifest
    partly = set(held_below(entry.root, manifest, receiver))
    assert partly == everything - {big, lost}  # the record held in part is not "had": it must be followed


def test_subscription_selects_by_topic_site_and_name() -> None:
    ql = entry("quicklooks/radar.png", ("quicklook",), 1, "")
    raw = entry("raw/radar.bin", ("raw",), 1, "")
    sub = Subscription([Selection(("quicklook",)), Selection((), ("BCO",)), Selection((), (), ("RV-*/raw/*",))])
    assert sub.selects(ql) and sub.selects(raw)
    assert not Subscription([Selection(("quicklook",), ("BCO",))]).selects(ql)
    assert Subscription.from_json(sub.to_json()).selects(raw)


@pytest.mark.parametrize("data, expected", [
    (os.urandom(300_000), RAW),            # incompressible: sent as it is
    (b"sonde " * 100_000, ZSTD),           # compressible
])
def test_encoding_is_chosen_and_verified(data: bytes, expected: int) -> None:
    encoding, payload = encode(data)
    assert encoding == expected
    assert decode(encoding, payload, None, ObjectId.of(data)) == data
    with pytest.raises(Corrupt):
        decode(encoding, payload, None, ObjectId.of(b"something else"))


def test_a_changed_block_travels_as_a_small_delta() -> None:
    old = os.urandom(4 << 20)
    new = old[:1000] + os.urandom(100) + old[1000:]
    encoding, payload = encode(new, old)
    assert encoding == DELTA and len(payload) < 10_000
    assert decode(encoding, payload, old, ObjectId.of(new)) == new
    with pytest.raises(Corrupt):
        decode(DELTA, payload, None, ObjectId.of(new))  # the base must be held


def test_pieces_reassemble_and_resume_after_a_drop() -> None:
    data = os.urandom(5 * PIECE + 123)
    oid = ObjectId.of(data)
    parts = [Piece.unpack(p.pack()) for p in pieces(oid, RAW, None, data)]
    assert len(parts) == 6
    held = Partials()
    for part in parts[:3]:
        assert held.assemble(part) is None
    assert held.specs([oid]) == {oid: (RAW, None, 3 * PIECE)}
    resumed = pieces(oid, RAW, None, data, start=held.specs([oid])[oid][2])
    assert resumed[0].offset == 3 * PIECE
    out = [held.assemble(p) for p in resumed]
    assert out[-1] == data and not held.specs()


def test_piece_headers_are_compact_and_name_a_base_only_for_a_delta() -> None:
    data = os.urandom(PIECE)
    oid, base = ObjectId.of(data), ObjectId.of(b"base")
    plain = Piece(oid, RAW, None, 512 << 10, 1 << 20, data)  # a piece of a 1 MiB block
    delta = Piece(oid, DELTA, base, 512 << 10, 1 << 20, data)
    assert len(plain.pack()) - PIECE == 40  # 'P', flags, id, two 3-byte varints
    assert len(delta.pack()) - PIECE == 72
    assert Piece.unpack(plain.pack()) == plain and Piece.unpack(delta.pack()) == delta
    huge = Piece(oid, ZSTD, None, 2**24, 2**25, b"x")  # as large as a link carries
    assert Piece.unpack(huge.pack()) == huge
    for bad in (plain.pack()[:34], plain.pack()[:35] + b"\xff" * 12, b"O" + plain.pack()[1:]):
        with pytest.raises(BadInput):
            Piece.unpack(bad)


def test_large_control_messages_travel_compressed_and_bombs_are_refused() -> None:
    import json

    import zstandard

    from eurec4a_nt.sync.actions import Say, merge_pushing
    from eurec4a_nt.sync.wire import squeeze, unsqueeze

    text = json.dumps({"type": "commits", "raws": [json.dumps({"site": "RV-Meteor", "seq": i}) for i in range(300)]})
    packed = squeeze(text)
    assert isinstance(packed, bytes) and len(packed) < len(text) / 4 and unsqueeze(packed) == text
    assert squeeze('{"type":"heads"}') == '{"type":"heads"}'  # small ones stay text
    bomb = b"Z" + zstandard.ZstdCompressor().compress(b" " * (65 << 20))
    with pytest.raises(BadInput):
        unsqueeze(bomb)
    with pytest.raises(BadInput):
        unsqueeze(b"Znot zstd")
    merged = merge_pushing([Say("pushing", {"roots": ["a"]}), Say("heads", {}), Say("pushing", {"roots": ["b"]})])
    assert merged == [Say("pushing", {"roots": ["a", "b"]}), Say("heads", {})]


def test_the_handshake_names_the_newest_partial_objects_and_stays_small() -> None:
    import json

    held = Partials()
    started = []
    for i in range(60):
        data = os.urandom(2 * PIECE) + bytes([i])
        oid = ObjectId.of(data)
        held.assemble(pieces(oid, RAW, None, data)[0])
        started.append(oid)
    header = held.header()
    assert set(header) == set(started[-20:])
    assert len(json.dumps(header)) < 4096  # an HTTP header field, whatever else it carries


def test_a_gap_or_another_encoding_discards_the_partial_object() -> None:
    data = os.urandom(3 * PIECE)
    oid = ObjectId.of(data)
    parts = pieces(oid, RAW, None, data)
    held = Partials()
    held.assemble(parts[0])
    assert held.assemble(parts[2]) is None and not held.specs()  # gap: start again
    held.assemble(parts[0])
    other = Piece(oid, ZSTD, None, PIECE, 3 * PIECE, parts[1].data)
    assert held.assemble(other) is None and not held.specs()


def test_reconnections_are_quick_at_first_then_back_off_and_never_spin() -> None:
    delays = [retry_delay(a) for a in range(1, 40)]
    assert all(d >= 0.15 for d in delays)  # never a busy loop
    assert sum(delays[:15]) < 4  # a short drop is noticed within a fraction of a second
    assert delays[-1] >= 40 and sum(delays) > 300  # a long outage costs a few tries an hour
