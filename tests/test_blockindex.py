"""A file entry's block offsets are found by bisection in a compact, cached index: a
range read does not parse the whole record."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eurec4a_nt import chunking
from eurec4a_nt.blockindex import BlockIndex
from eurec4a_nt.chunking import Block, FileRecord
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.manifests import Ref, RefReader
from eurec4a_nt.publishing import store_file
from eurec4a_nt.stores.local import LocalStore

pytestmark = pytest.mark.timeout(120)


def test_span_matches_a_scan_on_a_large_record() -> None:
    rng = random.Random(1)
    blocks, offset = [], 0
    for i in range(100_000):  # a file of ~100 GiB in blocks of 0.1-2 MiB
        length = rng.randint(100_000, 2_000_000)
        blocks.append(Block(ObjectId.of(b"%d" % i), offset, length))
        offset += length
    record = FileRecord(offset, tuple(blocks))
    index = BlockIndex.of(record)
    assert len(index) == 100_000 and index.nbytes < 50 * 100_000
    for _ in range(300):
        start = rng.randrange(offset)
        end = min(start + rng.randint(1, 5_000_000), offset)
        expected = [(b.id, b.offset, b.length) for b in blocks if b.offset < end and b.end > start]
        assert index.span(start, end) == expected
    assert index.span(0, 1) == [(blocks[0].id, 0, blocks[0].length)]
    assert index.span(offset - 1, offset + 10) == [(blocks[-1].id, blocks[-1].offset, blocks[-1].length)]
    assert index.span(5, 5) == []


def test_range_reads_parse_the_record_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.Random(2).randbytes(12 << 20)
    (tmp_path / "f.bin").write_bytes(data)
    store = LocalStore(tmp_path / "store")
    root, size = store_file(tmp_path / "f.bin", store)
    parsed: list[int] = []
    real = chunking.FileRecord.from_bytes
    monkeypatch.setattr(chunking.FileRecord, "from_bytes",
                        classmethod(lambda cls, raw: parsed.append(1) or real(raw)))
    rng = random.Random(3)
    for _ in range(40):  # a new reader per read, as every HTTP request makes
        start = rng.randrange(size)
        end = start + rng.randint(1, 3 << 20)
        assert RefReader(Ref(root, size, record=True), store).read(start, end) == data[start:end]
    assert len(parsed) == 1
    with pytest.raises(Exception, match="its entry says"):  # a ref claiming another size
        RefReader(Ref(root, size + 1, record=True), store).blocks_for(0, 10)
