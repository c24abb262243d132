"""Wants are earned and bounded: an anonymous reader earns them only for ids a known
entry names; every reader and every site has a cap; they expire; one per id."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from eurec4a_nt import index as index_module
from eurec4a_nt.chunking import record_bytes
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.index import Index
from eurec4a_nt.log import Change, make_commit
from eurec4a_nt.node import Node, Reader
from eurec4a_nt.sitestore import SiteStore

ANON = Reader("address:10.0.0.9")
TRUSTED = Reader("token:abc", trusted=True)


def made_up(n: int, seed: int = 0) -> list[ObjectId]:
    return [ObjectId.of(f"{seed}-{i}".encode()) for i in range(n)]


@pytest.fixture
def hub(tmp_path: Path) -> Node:
    """OPS, knowing one file entry of RV-Meteor whose record (not its blocks) it holds."""
    ship = SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")
    hub = SiteStore.init(tmp_path / "OPS", "OPS")
    hub.trust(ship.keyring)
    blocks: list[tuple[ObjectId, bytes]] = []
    record = record_bytes(os.urandom(3 << 20), blocks.extend)
    body = record.to_bytes()
    entry = Entry("raw/radar.bin", "file", ObjectId.of(body), record.size, "binary")
    commit = make_commit(ship.key, "RV-Meteor", 1, None, [Change("put", entry.name, entry)])
    assert hub.receive([commit.raw])[0]
    node = Node(hub, Index(hub.path / "state" / "index.sqlite"))
    asyncio.run(node.put_objects([(entry.root, body)]))
    node.blocks = [oid for oid, _ in blocks]  # type: ignore[attr-defined]
    node.root = entry.root  # type: ignore[attr-defined]
    return node


def test_an_anonymous_flood_of_made_up_ids_records_nothing(hub: Node) -> None:
    assert hub.want(made_up(20_000), "RV-Meteor", ANON, None) == 0
    assert hub.index.wants() == []


def test_ids_a_known_entry_names_are_earned(hub: Node) -> None:
    blocks, root = hub.blocks, hub.root  # type: ignore[attr-defined]
    assert hub.want([root, *blocks, *made_up(5)], "RV-Meteor", ANON, None) == 1 + len(blocks)
    assert {w.id for w in hub.index.wants("RV-Meteor")} == {root, *blocks}


def test_a_reader_with_a_token_earns_any_id_up_to_its_cap(hub: Node) -> None:
    cap = index_module.MAX_WANTS_PER_REQUESTER
    assert hub.want(made_up(cap + 500), "RV-Meteor", TRUSTED, None) == cap
    assert hub.want(made_up(10, seed=1), "RV-Meteor", TRUSTED, None) == 0  # full
    other = Reader("token:def", trusted=True)
    assert hub.want(made_up(10, seed=2), "RV-Meteor", other, None) == 10


def test_wants_are_capped_per_site_and_one_per_id(hub: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "MAX_WANTS_PER_SITE", 30)
    ids = made_up(20)
    for i in range(3):
        hub.want(ids, "RV-Meteor", Reader(f"token:{i}", trusted=True), None)
    assert len(hub.index.wants("RV-Meteor")) == 20  # one per id when sent, however many asked
    assert hub.index.want(made_up(5, seed=3), "RV-Meteor", "token:9") == 0  # 30 rows: site full
    assert hub.index.want(made_up(5, seed=3), "BCO", "token:9") == 5  # another site has room


def test_wants_expire_and_are_forgotten_when_the_holder_lacks_them(hub: Node,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ids = made_up(5)
    hub.want(ids, "RV-Meteor", TRUSTED, None)
    hub.index.forget_wants(ids[:2], "RV-Meteor")
    assert {w.id for w in hub.index.wants()} == set(ids[2:])
    monkeypatch.setattr(index_module, "WANT_TTL", -1)
    assert hub.index.wants() == []
    hub.index.want(made_up(1, seed=4), "RV-Meteor", "token:x")  # a write also clears the expired
    monkeypatch.setattr(index_module, "WANT_TTL", 3600)
    assert [w.id for w in hub.index.wants()] == made_up(1, seed=4)
