"""Verified parts of blocks: the hash tree, its proofs, and lazy reads through a server
that move only the leaves a reader needs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, start, status

import eurec4a_nt as nt
from eurec4a_nt import hashtree
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.errors import Corrupt
from eurec4a_nt.fs import NTFileSystem
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.parts import Part, Parts
from eurec4a_nt.sitestore import SiteStore

SITE = "RV-Meteor"


@pytest.mark.parametrize("size", [1, hashtree.LEAF, hashtree.LEAF + 1, 5 * hashtree.LEAF + 7, 1 << 20, 3_900_000])
def test_any_range_verifies_and_any_change_is_caught(size: int) -> None:
    rng = random.Random(size)
    data = os.urandom(size)
    root = hashtree.root(data)
    for _ in range(20):
        start = rng.randrange(size)
        first, last = hashtree.span(size, start, rng.randint(start + 1, size))
        proof = hashtree.prove(data, first, last)
        hashtree.verify(data[first:last], size, first, proof, root)
        damaged = bytearray(data[first:last])
        damaged[rng.randrange(len(damaged))] ^= 1
        with pytest.raises(Corrupt):
            hashtree.verify(bytes(damaged), size, first, proof, root)
        if proof:
            with pytest.raises(Corrupt):
                hashtree.verify(data[first:last], size, first, proof[:-1], root)
            with pytest.raises(Corrupt):
                hashtree.verify(data[first:last], size, first, [bytes(32), *proof[1:]], root)


def test_a_proof_costs_under_one_percent_of_what_it_proves() -> None:
    data = os.urandom(4 << 20)  # the largest block
    first, last = hashtree.span(len(data), 1_000_000, 1_000_000 + (64 << 10))
    assert len(hashtree.prove(data, first, last)) * 32 < 0.01 * (last - first)


@pytest.mark.timeout(120)
def test_lazy_netcdf_reads_through_a_server_move_only_verified_leaves(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", SITE)
    try:
        path = tmp_path / "spectra.nc"
        rng = np.random.default_rng(3)
        xr.Dataset({"spectra": (("time", "bin"), rng.random((4000, 500)))}).to_netcdf(path, engine="h5netcdf")
        entry = nt.publish(path, name="raw/spectra.nc", server=proc.url, token=proc.token, progress=False)
        record = FileRecord.from_bytes(SiteStore(tmp_path / "sites" / SITE).objects.get(entry.root))
        assert all(b.tree for b in record.blocks)
        fs = NTFileSystem(server=proc.url, cache=str(tmp_path / "cache"))
        before = status(proc.url)["traffic"]["served"]
        middle = record.size // 2
        assert fs.cat_file(f"{SITE}/raw/spectra.nc", middle, middle + 1000) == path.read_bytes()[middle:middle + 1000]
        moved = status(proc.url)["traffic"]["served"] - before
        assert 1000 <= moved <= 2 * hashtree.LEAF  # a leaf or two, not the ~1 MiB block
        cached = {p.name for p in (tmp_path / "cache").rglob("*")}
        assert not cached & {b.id for b in record.blocks}  # a part is not cached as the block

        block = next(b for b in record.blocks if b.offset <= middle < b.end)
        answer = requests.get(f"{proc.url}/objects/{block.id}", params={"proof": "1"},
                              headers={"Range": "bytes=20000-20999"}, timeout=TIMEOUT)
        count = int(answer.headers["X-Proof-Hashes"])
        proof = [answer.content[i * 32:(i + 1) * 32] for i in range(count)]
        part = bytearray(answer.content[count * 32:])
        assert answer.headers["Content-Range"] == f"bytes 16384-32767/{block.length}"
        hashtree.verify(bytes(part), block.length, 16384, proof, str(block.tree))
        part[5] ^= 0xFF
        with pytest.raises(Corrupt):
            hashtree.verify(bytes(part), block.length, 16384, proof, str(block.tree))
    finally:
        proc.stop()


def test_parts_held_answer_reads_of_them_and_stay_bounded() -> None:
    block, other, leaf = ObjectId.of(b"a"), ObjectId.of(b"b"), hashtree.LEAF
    data = os.urandom(10 * leaf + 100)
    root = hashtree.root(data)
    parts = Parts(limit=4 * leaf)
    assert parts.lacking(block, root, 0, 2 * leaf) == (0, 2 * leaf)
    parts.put(block, root, 2 * leaf, data[2 * leaf:4 * leaf])
    assert parts.get(block, root, 2 * leaf + 5, 3 * leaf + 7) == data[2 * leaf + 5:3 * leaf + 7]
    assert parts.get(block, root, leaf, 3 * leaf) is None
    assert parts.lacking(block, root, leaf, 5 * leaf) == (leaf, 5 * leaf)
    assert parts.lacking(block, root, 2 * leaf, 4 * leaf) is None
    last = 10 * leaf
    parts.put(block, root, last, data[last:])  # the short last leaf
    assert parts.get(block, root, last + 10, len(data)) == data[last + 10:]
    parts.put(other, root, 0, data[:3 * leaf])  # over the limit: the oldest leaves go
    assert parts.get(block, root, 2 * leaf, 3 * leaf) is None
    assert parts.get(other, root, 0, 3 * leaf) == data[:3 * leaf]
    parts.drop(other)
    assert parts.lacking(other, root, 0, leaf) == (0, leaf)


def test_parts_are_served_only_to_reads_naming_the_root_they_were_checked_against() -> None:
    """Leaves kept under one tree root (say one a forged record gave, with leaves made to
    fit it) are not served to a read of the same block by another root; a run kept with
    its proof is passed on as it came, while its leaves are here."""
    block, leaf = ObjectId.of(b"a"), hashtree.LEAF
    data = os.urandom(4 * leaf)
    root, forged = hashtree.root(data), "00" * 32
    parts = Parts()
    run = Part(block, len(data), leaf, hashtree.prove(data, leaf, 2 * leaf), data[leaf:2 * leaf])
    parts.keep(Part(block, len(data), leaf, run.proof, os.urandom(leaf)), forged)
    assert parts.get(block, root, leaf, 2 * leaf) is None and parts.proven(block, root, leaf, 2 * leaf) is None
    assert parts.lacking(block, root, leaf, 2 * leaf) == (leaf, 2 * leaf)
    parts.keep(run, root)
    assert parts.proven(block, root, leaf, 2 * leaf) == run and parts.get(block, root, leaf, 2 * leaf) == run.data
    assert parts.proven(block, root, 0, 2 * leaf) is None  # kept as another run
    parts.drop(block)
    assert parts.proven(block, root, leaf, 2 * leaf) is None


def test_a_read_needing_most_of_a_block_fetches_it_whole() -> None:
    size = 1 << 20
    assert hashtree.in_part(size, 1000, 2000) and hashtree.in_part(size, 0, size // 2)
    assert not hashtree.in_part(size, 100, size // 2 + 100) and not hashtree.in_part(size, 0, size)
