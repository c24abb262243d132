"""Content-defined blocks and file records: sizes, stability under edits, streaming memory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eurec4a_nt.chunking import (
    AVG_BLOCK,
    MAX_BLOCK,
    MIN_BLOCK,
    Block,
    FileRecord,
    cut_bytes,
    record_bytes,
    record_file,
)
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.errors import Corrupt
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.publishing import store_file
from eurec4a_nt.stores.local import LocalStore

pytestmark = pytest.mark.timeout(120)


def _insert(src: Path, dest: Path, offset: int, extra: bytes) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[:offset] + extra + data[offset:])
    return dest


def _blocks_of(store: LocalStore, root: ObjectId) -> list[Block]:
    return list(FileRecord.from_bytes(store.get(root)).blocks)


def test_blocks_tile_the_file_and_respect_the_bounds(scratch: Path) -> None:
    path = sd.raw_file(scratch / "raw.bin", size=24 << 20, seed=1)
    store = LocalStore(scratch / "store")
    root, size = store_file(path, store)
    data = path.read_bytes()
    record = FileRecord.from_bytes(store.get(root))
    assert size == record.size == len(data)
    assert b"".join(store.get(b.id, verify=True) for b in record.blocks) == data
    lengths = [b.length for b in record.blocks]
    assert all(n <= MAX_BLOCK for n in lengths)
    assert all(n >= MIN_BLOCK for n in lengths[:-1])
    assert AVG_BLOCK / 2 < len(data) / len(lengths) < AVG_BLOCK * 2
    assert set(store.ids()) == {root} | {b.id for b in record.blocks}


@pytest.mark.parametrize("size", [300 << 10, 12 << 20])
def test_publishing_hashes_every_byte_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=size, seed=3)
    hashed: list[int] = []
    of = ObjectId.of.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(ObjectId, "of", classmethod(lambda cls, data: hashed.append(len(data)) or of(cls, data)))
    store = LocalStore(tmp_path / "store")
    root, _ = store_file(path, store)
    assert sum(hashed) == size + store.size(root)  # each block once, then the record
    assert b"".join(store.get(b.id, verify=True) for b in _blocks_of(store, root)) == path.read_bytes()


def test_record_bytes_matches_record_file(tmp_path: Path) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=5 << 20, seed=2)
    got: list[tuple[ObjectId, bytes]] = []
    from_file = record_file(path, got.extend)
    from_bytes = record_bytes(path.read_bytes(), lambda items: list(items) and None)
    assert from_file == from_bytes
    assert [oid for oid, _ in got] == [b.id for b in from_file.blocks]
    assert all(ObjectId.of(data) == oid for oid, data in got)
    assert [b.id for b, _ in cut_bytes(path.read_bytes())] == [b.id for b in from_file.blocks]


@pytest.mark.parametrize("segment", [MAX_BLOCK + 1, 5 << 20])
def test_a_file_read_in_segments_gets_the_blocks_of_cutting_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segment: int) -> None:
    """Blocks that reach a segment's end are cut again from the next one; a run of zeros
    (blocks of the largest size) crosses segment ends too."""
    import eurec4a_nt.chunking as chunking

    monkeypatch.setattr(chunking, "_SEGMENT", segment)
    data = sd.raw_file(tmp_path / "raw.bin", size=24 << 20, seed=7).read_bytes()
    data = data[:7 << 20] + bytes(9 << 20) + data[16 << 20:]
    (tmp_path / "mixed.bin").write_bytes(data)
    got: list[tuple[ObjectId, bytes]] = []
    record = record_file(tmp_path / "mixed.bin", got.extend)
    assert [b.id for b in record.blocks] == [b.id for b, _ in cut_bytes(data)]
    assert MAX_BLOCK in {b.length for b in record.blocks}
    assert b"".join(piece for _, piece in got) == data
    assert all(ObjectId.of(piece) == oid for oid, piece in got)


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "tiny").write_bytes(b"x")
    root, size = store_file(tmp_path / "empty", store)
    record = FileRecord.from_bytes(store.get(root))
    assert size == 0 and record.blocks == () and record.sha256 is None
    root, size = store_file(tmp_path / "tiny", store)
    record = FileRecord.from_bytes(store.get(root))
    assert size == 1 and [b.length for b in record.blocks] == [1]


def test_file_record_round_trip_and_damage() -> None:
    a, b = ObjectId.of(b"a"), ObjectId.of(b"bb")
    record = FileRecord(3, (Block(a, 0, 1), Block(b, 1, 2)))
    assert FileRecord.from_bytes(record.to_bytes()) == record
    older = FileRecord(3, record.blocks, hashlib.sha256(b"abb").hexdigest())  # as once written
    assert FileRecord.from_bytes(older.to_bytes()) == older
    viewed = FileRecord(3, record.blocks, refs={".zgroup": '{"zarr_format":2}', "x/0": (1, 2)})
    assert FileRecord.from_bytes(viewed.to_bytes()) == viewed
    for bad in ([2, 2], [1], [-1, 1], 7):  # past the end, short, negative, not a reference
        body = {**json.loads(viewed.to_bytes()), "refs": {"x/0": bad}}
        with pytest.raises(Corrupt):
            FileRecord.from_bytes(json.dumps(body).encode())
    body = json.loads(record.to_bytes())
    damaged = [
        b"not json",
        json.dumps({**body, "type": "manifest"}).encode(),
        json.dumps({**body, "size": 4}).encode(),  # blocks do not add up
        json.dumps({**body, "blocks": [[a, 0, 1], [b, 2, 2]]}).encode(),  # a gap
        json.dumps({**body, "blocks": [[a, 0, 1], ["B" * 64, 1, 2]]}).encode(),  # bad id
        json.dumps({k: v for k, v in body.items() if k != "blocks"}).encode(),
    ]
    for data in damaged:
        with pytest.raises(Corrupt):
            FileRecord.from_bytes(data)


@pytest.mark.timeout(180)
def test_insert_100_bytes_near_the_start_of_100_mb_stores_few_blocks(scratch: Path) -> None:
    original = sd.raw_file(scratch / "raw.bin", size=100 << 20, seed=3)
    store = LocalStore(scratch / "store")
    root, _ = store_file(original, store)
    before = set(store.ids())
    edited = _insert(original, scratch / "edited.bin", 5000, bytes(range(100)))
    original.unlink()
    new_root, size = store_file(edited, store)
    new = set(store.ids()) - before
    assert size == (100 << 20) + 100
    assert new_root in new
    new_blocks = new - {new_root}
    assert 1 <= len(new_blocks) < 3
    old_blocks, blocks = _blocks_of(store, root), _blocks_of(store, new_root)
    assert len(blocks) > 50
    assert [b.id for b in blocks[len(new_blocks):]] == [b.id for b in old_blocks[len(new_blocks):]]
    assert b"".join(store.get(b.id) for b in blocks) == edited.read_bytes()


@pytest.mark.timeout(180)
def test_appending_changes_only_the_tail(scratch: Path) -> None:
    path = sd.raw_file(scratch / "raw.bin", size=40 << 20, seed=4)
    store = LocalStore(scratch / "store")
    root, _ = store_file(path, store)
    before = set(store.ids())
    tail = sd.raw_file(scratch / "tail.bin", size=1 << 20, seed=5).read_bytes()
    with open(path, "ab") as f:
        f.write(tail)
    new_root, size = store_file(path, store)
    new_blocks = set(store.ids()) - before - {new_root}
    old_blocks, blocks = _blocks_of(store, root), _blocks_of(store, new_root)
    assert size == (41 << 20)
    # Every block but the old last one is kept at its offset; only the tail is new.
    assert blocks[:len(old_blocks) - 1] == old_blocks[:-1]
    assert {b.id for b in blocks[len(old_blocks) - 1:]} >= new_blocks
    assert 1 <= len(new_blocks) <= 3
    assert sum(store.size(oid) for oid in new_blocks) < 6 << 20


def test_file_changed_while_publishing_is_refused(tmp_path: Path) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=3 << 20, seed=6)

    def grow_then_put(items: object) -> None:
        for _ in items:  # type: ignore[attr-defined]
            pass
        with open(path, "ab") as f:
            f.write(b"more data arrived")

    with pytest.raises(Corrupt, match="changed while"):
        record_file(path, grow_then_put)


_MEMORY_PROBE = textwrap.dedent("""
    import json, re, resource, sys, time
    from eurec4a_nt.api import init_site, publish

    def status(key):
        return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

    init_site("RV-Meteor", store=sys.argv[2])
    try:  # reset the peak to the current RSS, so the peak measures the publish alone
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, peak = status("VmRSS"), lambda: status("VmHWM")
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    entry = publish(sys.argv[1], "raw/big.bin", store=sys.argv[2], progress=False)
    seconds = time.monotonic() - t0
    print(json.dumps({"before_kb": before, "after_kb": peak(), "size": entry.size,
                      "seconds": seconds}))
""")


@pytest.mark.timeout(120)
def test_publishing_1_gb_streams_in_bounded_memory(scratch: Path) -> None:
    """A 1 GiB file (sparse, with random regions so blocks vary) is published in a fresh
    process whose peak RSS grows by well under 200 MB."""
    size = 1 << 30
    path = scratch / "big.bin"
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(32):
            f.seek(i * (size // 32) + 12345)
            f.write(np.random.default_rng(i).bytes(1 << 20))
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), str(scratch / "store")],
                         capture_output=True, text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["size"] == size
    growth_mb = (result["after_kb"] - result["before_kb"]) / 1024
    assert growth_mb < 150, f"peak RSS grew by {growth_mb:.0f} MB while publishing 1 GiB"
    path.unlink()
