"""One publish call with any number of files: split into commits under the size limit,
each atomic, and resumable (run again, it commits nothing already committed)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

import eurec4a_nt as nt
from eurec4a_nt.batches import BATCH_BYTES
from eurec4a_nt.log import MAX_COMMIT_BYTES
from eurec4a_nt.sitestore import SiteStore

SITE = "RV-Meteor"


def small_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"ql-{i:05d}.txt"
        path.write_bytes(b"quicklook %d\n" % i)
        paths.append(path)
    return paths


@pytest.mark.timeout(300)
def test_more_than_15000_files_in_one_call(store: SiteStore, scratch: Path) -> None:
    paths = small_files(scratch / "ql", 15_500)
    first = nt.publish(paths[:6000], "ql", topics=["quicklook"], store=store.path, progress=False)
    assert len(first) == 6000 and SiteStore(store.path).log(SITE).seq == 1
    # the whole set again: the first 6000 are committed already, only the rest is new
    published = nt.publish(paths, "ql", topics=["quicklook"], store=store.path, progress=False)
    assert [e.name for e in published] == [f"ql/{p.name}" for p in paths]
    assert published[0] == first[0]  # as committed the first time, publication time included
    fresh = SiteStore(store.path)
    log = fresh.log(SITE)
    commits = list(log)
    assert len(commits) >= 2 and sum(len(c.changes) for c in commits) == 15_500
    assert all(len(c.raw) <= MAX_COMMIT_BYTES for c in commits)
    assert max(len(c.raw) for c in commits) > BATCH_BYTES // 2  # full commits, not one per file
    assert fresh.state(SITE).count("ql/") == 15_500
    assert log.verify(fresh.keyring) == []
    seq = log.seq
    again = nt.publish(paths, "ql", topics=["quicklook"], store=store.path, progress=False)
    assert SiteStore(store.path).log(SITE).seq == seq and again == published
    entry = fresh.entry(SITE, "ql/ql-15499.txt")
    fs = fsspec.filesystem("nt", store=str(store.path), skip_instance_cache=True)
    assert fs.cat(f"{SITE}/ql/ql-15499.txt") == b"quicklook 15499\n" and entry.size == 16
