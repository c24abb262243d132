"""Folder summaries in the log state: the folders, series and days they give are those
a walk over every entry gives, after any log of puts, replacements and removals, and
after a state written without them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eurec4a_nt import catalog as catalogs
from eurec4a_nt import summaries
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.listing import SiteIndex
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.summaries import SiteFolders

SITE = "RV-Meteor"
#: Folders, some a single series deep down, some holding series and entries side by side.
FOLDERS = ["", "sondes/", "radar/", "q/lidar/", "q/mrr/", "deep/er/still/", "mixed/", "mixed/sub/"]


def _names(rng: random.Random) -> list[str]:
    """Names of every kind: dated in several spellings (compact, dashed, with a time of
    day), undated, and look-alike templates whose products would take the same key."""
    start = datetime(2020, 1, 10)
    out = set()
    for folder in FOLDERS:
        for i in range(rng.randint(3, 14)):
            when = start + timedelta(hours=7 * i + rng.randint(0, 5))
            out.add(f"{folder}{when:%Y-%m-%dT%H%M}.nc")
            out.add(f"{folder}LIMRAD94_{when:%Y%m%d}.nc")
            out.add(f"{folder}x-{when:%Y-%m-%d}.png")
            out.add(f"{folder}x_{when:%Y%m%d}.png")
            out.add(f"{folder}{when:%Y-%m-%d}_a.nc")  # key "a" both: the first by name takes it
            out.add(f"{folder}{when:%Y%m%d}-a.nc")
        out.update({f"{folder}README.md", f"{folder}report_20200201.pdf", f"{folder}IMG_{rng.randint(0, 99):04d}.jpg"})
    for i in range(rng.randint(2, 9)):  # folders holding one series only, one below the other
        out.add(f"solo/inner/{start + timedelta(minutes=10 * i):%Y%m%dT%H%M}.nc")
        out.add(f"q/ceilometer/{start + timedelta(days=i):%Y-%m-%d}.png")
    return sorted(out)


def _entry(rng: random.Random, name: str) -> Entry:
    fmt = rng.choice(["netcdf", "png", "zarr", "md"])
    metadata = {"series_dim": rng.choice(["time", "launch"])} if rng.random() < 0.3 else {}
    return Entry(name=name, kind="file", root=ObjectId.of(f"{name}{rng.random()}".encode()), size=rng.randint(1, 9999),
                 format=fmt, topics=(rng.choice(["sondes", "radar", "quicklook"]),), metadata=metadata,
                 published=f"2026-01-01T00:00:{rng.randint(0, 59):02d}.000Z")


def _random_log(store: SiteStore, rng: random.Random, commits: int) -> None:
    """``commits`` commits of new entries, replacements and removals of random names."""
    pool, held = _names(rng), set()
    for _ in range(commits):
        changes = []
        for name in rng.sample(pool, rng.randint(1, 40)):
            if name in held and rng.random() < 0.4:
                changes.append(Change("remove", name))
                held.discard(name)
            else:
                changes.append(Change("put", name, _entry(rng, name)))
                held.add(name)
        store.commit(changes)


def _walked(store: SiteStore) -> SiteIndex:
    """The site's index made by a walk over every current entry."""
    entries = {e.name: e for e in store.entries(SITE).values()}
    return SiteIndex(SITE, entries=entries)


def _assert_same(store: SiteStore) -> int:
    """Every folder, product and day of products from the summaries equals that of a
    walk, and so do the folders' catalogs; return how many folders were compared."""
    walked, summed = _walked(store), store.folders(SITE)
    assert isinstance(summed, SiteFolders)
    prefixes = {""} | {name[:i + 1] for name in walked.names for i, c in enumerate(name) if c == "/"}
    for prefix in sorted(prefixes):
        want, got = walked.folder(prefix), summed.folder(prefix)
        assert got == want, prefix
        assert catalogs.dump(catalogs.folder_catalog(got, "http://x/data/", f"http://x/{prefix}", {})) == \
            catalogs.dump(catalogs.folder_catalog(want, "http://x/data/", f"http://x/{prefix}", {}))
        for product in want.products:
            path = f"{prefix}{product.key}"
            assert summed.product(path) == walked.product(path)
            assert summed.days(product) == walked.days(product), path
            lo, hi = datetime(2020, 1, 12), datetime(2020, 1, 14, 6)
            assert summed.members(product, lo, hi) == walked.members(product, lo, hi), path
    return len(prefixes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_match_a_walk_of_every_entry(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = SiteStore.init(tmp_path / SITE, SITE)
    for _ in range(4):
        _random_log(store, rng, 6)
        assert _assert_same(store) > len(FOLDERS)
    with store.db._reading() as db:  # kept as the commits applied: never made again
        assert summaries.summarized(db, SITE)


def test_a_state_written_without_summaries_gets_them_once(tmp_path: Path) -> None:
    """A state an earlier version wrote (no summaries), or that a writer without them
    moved on: they are made again from the names when next read, and kept from there."""
    rng = random.Random(7)
    store = SiteStore.init(tmp_path / SITE, SITE)
    _random_log(store, rng, 10)
    with store.db._tx() as db:
        summaries.forget(db, SITE)
    _random_log(store, rng, 3)  # applied while they are missing: left for the rebuild
    with store.db._reading() as db:
        assert not summaries.summarized(db, SITE)
        assert db.execute("SELECT COUNT(*) FROM folder_names WHERE site=?", (SITE,)).fetchone()[0] == 0
    _assert_same(store)
    _random_log(store, rng, 3)
    with store.db._reading() as db:
        assert summaries.summarized(db, SITE)
    _assert_same(store)
    reopened = SiteStore(tmp_path / SITE)
    _assert_same(reopened)


def test_emptied_folders_are_gone(tmp_path: Path) -> None:
    """A folder whose last entry is removed leaves no row behind, and is not found."""
    rng = random.Random(3)
    store = SiteStore.init(tmp_path / SITE, SITE)
    names = ["deep/er/a.md", "deep/er/2020-01-01.nc", "deep/er/2020-01-02.nc", "top.md"]
    store.commit([Change("put", n, _entry(rng, n)) for n in names])
    assert store.folder(SITE, "").folders == {"deep": 3}
    store.commit([Change("remove", n) for n in names[:3]])
    with pytest.raises(Exception, match="no folder 'deep'"):
        store.folder(SITE, "deep/")
    assert store.folder(SITE, "").folders == {}
    with store.db._reading() as db:
        for table in ("folder_names", "folder_templates", "folder_counts"):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE site=?", (SITE,)).fetchone()[0] == \
                (0 if table == "folder_counts" else 1)
    _assert_same(store)


def test_a_state_started_from_a_checkpoint_has_them(tmp_path: Path) -> None:
    """A state started from a checkpoint's entries (as a joining site's is) gets its
    summaries in the same transaction, and keeps them as later commits apply."""
    rng = random.Random(5)
    store = SiteStore.init(tmp_path / SITE, SITE)
    _random_log(store, rng, 8)
    head, entries, previous = store.db.snapshot(SITE)
    with store.db._tx() as db:
        summaries.forget(db, SITE)
    assert store.db.reset(SITE, head, base=head, entries=entries, previous=previous)
    with store.db._reading() as db:
        assert summaries.summarized(db, SITE)
    _assert_same(store)
    _random_log(store, rng, 4)
    _assert_same(store)


def test_names_changed_several_times_in_one_commit(tmp_path: Path) -> None:
    """A commit may put, remove and put one name again: it counts once, or not at all."""
    rng = random.Random(11)
    store = SiteStore.init(tmp_path / SITE, SITE)
    a, b = "a/2020-01-01.nc", "a/2020-01-02.nc"
    store.commit([Change("put", a, _entry(rng, a)), Change("remove", a), Change("put", a, _entry(rng, a)),
                  Change("put", b, _entry(rng, b))])
    assert [p.count for p in store.folder(SITE, "a/").products] == [2]
    _assert_same(store)
    store.commit([Change("remove", a), Change("put", a, _entry(rng, a)), Change("remove", a)])
    assert [e.name for e in store.folder(SITE, "a/").entries] == [b]
    _assert_same(store)
