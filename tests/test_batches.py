"""One publish call with any number of files: split into commits under the size limit,
each atomic, and resumable (run again, it commits nothing already committed)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
from server_kit import start, status

import eurec4a_nt as nt
from eurec4a_nt.batches import BATCH_BYTES
from eurec4a_nt.client import SiteClient
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
def test_more_than_15000_files_in_one_call(store: SiteStore, tmp_path: Path) -> None:
    # in tmp_path, which pytest removes sessions later: removing 31,000 files here took 18 s
    paths = small_files(tmp_path / "ql", 15_500)
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


@pytest.mark.timeout(300)
def test_publishing_again_through_a_server_reads_its_entries_a_page_at_a_time(
        scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run again through a server, a publish of 1,500 files commits nothing and asks the
    server for its entries under their folder a page at a time, not once per name."""
    paths = small_files(scratch / "ql", 1500)
    proc = start(scratch / "sites", SITE)
    try:
        first = nt.publish(paths, "ql/", server=proc.url, token=proc.token, progress=False)
        asked: list[str] = []
        real_get = SiteClient._get
        monkeypatch.setattr(SiteClient, "_get", lambda self, path: asked.append(path) or real_get(self, path))
        again = nt.publish(paths, "ql/", server=proc.url, token=proc.token, progress=False)
        assert again == first and status(proc.url)["sites"][SITE]["seq"] == 1
        lookups = [p for p in asked if p.startswith(f"/api/sites/{SITE}/entries")]
        assert 2 <= len(lookups) <= 3 and all("prefix=ql" in p for p in lookups), lookups
    finally:
        proc.stop()
