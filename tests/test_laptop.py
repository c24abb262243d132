"""A polite laptop: the block cache keeps to its cap (least recently used out), the
``cache`` command shows, caps and clears it, and ``get`` copies a file straight to disk,
every block checked, without filling the cache. Real server, real CLI subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_kit import start

import eurec4a_nt as nt
from eurec4a_nt.client import SiteClient
from eurec4a_nt.demokit.sampledata import raw_file
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.fs import NTFileSystem
from eurec4a_nt.stores.capped import CappedStore
from eurec4a_nt.stores.local import LocalStore

pytestmark = pytest.mark.timeout(120)
MB = 1_000_000


def nt_cmd(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={**os.environ, **env}, check=False)


def cached_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "objects").glob("*/*"))


def test_block_cache_keeps_to_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    monkeypatch.setenv("EUREC4A_NT_CACHE_CAP", "5MB")
    try:
        files = [raw_file(tmp_path / f"f{i}.bin", size=2 * MB, seed=i) for i in range(5)]
        for f in files:
            nt.publish(f, name=f"raw/{f.name}", server=proc.url, token=proc.token, progress=False)
        cache = tmp_path / "cache"
        reader = NTFileSystem(server=proc.url, cache=str(cache))
        client = reader.backend
        assert isinstance(client, SiteClient)
        for f in files:
            assert reader.cat_file(f"RV-Meteor/raw/{f.name}") == f.read_bytes()
            assert cached_bytes(cache) <= 5 * MB, "the cap holds after every read"
        last = files[-1]
        assert reader.cat_file(f"RV-Meteor/raw/{last.name}") == last.read_bytes()
        blocks = client.blocks
        assert isinstance(blocks, CappedStore) and blocks.usage()[1] == cached_bytes(cache)
        # the most recently read file is what stays: reading it again needs no server
        proc.stop()
        assert reader.cat_file(f"RV-Meteor/raw/{last.name}") == last.read_bytes()
    finally:
        proc.stop()


def test_capped_store_evicts_least_recently_used(tmp_path: Path) -> None:
    store = CappedStore(LocalStore(tmp_path / "c"), cap=3000)
    a, b, c = (store.put(bytes([i]) * 1000) for i in range(3))
    for oid, used in ((a, 50), (b, 1), (c, 100)):  # last used long ago: b, then a, then c
        os.utime(store.inner.local_path(oid), (used, used))
    store.get(a)  # now a is the most recently used of the three
    new = store.put(b"\x09" * 1000)  # 4000 B > 3000: evicted down to 90 % of the cap
    assert [store.has(oid) for oid in (a, b, c, new)] == [True, False, False, True]
    assert store.usage() == (2, 2000)
    assert store.clear() == 2000 and store.usage() == (0, 0)


def test_cache_command_shows_caps_and_clears(tmp_path: Path) -> None:
    env = {"EUREC4A_NT_CACHE": str(tmp_path / "cache"), "EUREC4A_NT_CONFIG": str(tmp_path / "config.yaml")}
    store = CappedStore(LocalStore(tmp_path / "cache"), cap=10 * MB)
    for _ in range(4):
        store.put(os.urandom(1 * MB))
    out = nt_cmd("cache", cwd=tmp_path, env=env)
    assert out.returncode == 0 and "4 blocks, 4.0 MB of a 2.0 GB cap" in out.stdout, out
    out = nt_cmd("cache", "--cap", "2.5MB", cwd=tmp_path, env=env)
    assert out.returncode == 0 and "saved in" in out.stdout
    assert (tmp_path / "config.yaml").read_text() == "cache-cap: 2500000\n"
    assert cached_bytes(tmp_path / "cache") <= 2.5 * MB  # evicted at once to the new cap
    out = nt_cmd("cache", "--clear", cwd=tmp_path, env=env)
    assert out.returncode == 0 and "0 blocks, 0 B of a 2.5 MB cap" in out.stdout
    out = nt_cmd("cache", "--cap", "lots", cwd=tmp_path, env=env)
    assert out.returncode == 2 and "--cap: bad size 'lots'" in out.stderr
    out = nt_cmd("ls", "--server", "http://127.0.0.1:1", cwd=tmp_path, env={**env, "EUREC4A_NT_CACHE_CAP": "x"})
    assert out.returncode == 2 and "EUREC4A_NT_CACHE_CAP: bad size 'x'" in out.stderr


def test_get_copies_to_disk_checks_blocks_and_leaves_the_cache_empty(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    env = {"EUREC4A_NT_CACHE": str(tmp_path / "cache"), "EUREC4A_NT_CONFIG": str(tmp_path / "config.yaml")}
    try:
        data = raw_file(tmp_path / "big.bin", size=12 * MB, seed=7)
        entry = nt.publish(data, name="raw/big.bin", server=proc.url, token=proc.token, progress=False)
        out = nt_cmd("get", "RV-Meteor/raw/big.bin", str(tmp_path / "copy.bin"), "--server", proc.url, "-q",
                     cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "copy.bin").read_bytes() == data.read_bytes()
        assert cached_bytes(tmp_path / "cache") < 100_000  # the file record only, no blocks
        # a block damaged on the server: refused, the earlier copy untouched, no .part left
        from eurec4a_nt.chunking import FileRecord

        record = FileRecord.from_bytes((proc.store / "objects" / entry.root[:2] / entry.root).read_bytes())
        block = record.blocks[len(record.blocks) // 2]
        path = proc.store / "objects" / block.id[:2] / block.id
        path.write_bytes(b"\0" * block.length)
        (tmp_path / "copy.bin").write_bytes(b"old")
        out = nt_cmd("get", "RV-Meteor/raw/big.bin", str(tmp_path / "copy.bin"), "--server", proc.url, "-q",
                     cwd=tmp_path, env=env)
        assert out.returncode == 2 and f"do not match block {block.id[:12]}" in out.stderr, out.stderr
        assert (tmp_path / "copy.bin").read_bytes() == b"old"
        assert not list(tmp_path.glob("*.part"))
    finally:
        proc.stop()


def test_progress_bars_end_at_their_real_total_in_decimal_units(capsys: pytest.CaptureFixture[str]) -> None:
    from eurec4a_nt.progress import progress_bar

    with progress_bar(10 * MB, "publish ds", True, estimated=True) as bar:  # a dataset's guessed size
        bar.update(2 * MB)
        shown = str(bar)
    assert (bar.n, bar.total) == (2 * MB, 2 * MB)  # ends full, at what was counted
    assert "2.00M/10.0M" in shown and "MiB" not in shown  # decimal MB, as ls and the page show
    with pytest.raises(RuntimeError), progress_bar(10 * MB, "publish x", True, estimated=True) as bar:
        bar.update(1 * MB)
        raise RuntimeError("cut short")
    assert (bar.n, bar.total) == (1 * MB, 10 * MB)  # stops where the work stopped
    with progress_bar(5, "prefetch", True, unit=" objects") as bar:
        bar.update(3)
    assert (bar.n, bar.total) == (3, 5)  # an exact total is never rewritten
    capsys.readouterr()


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A server holding 1,200 small file entries (more than a page of the catalog API)
    and a zarr entry."""
    from eurec4a_nt.demokit.sampledata import timeseries

    root = tmp_path_factory.mktemp("many")
    proc = start(root / "sites", "RV-Meteor")
    try:
        files = []
        for i in range(1200):
            files.append(root / f"f{i:04d}.txt")
            files[-1].write_text(f"sonde {i}")
        nt.publish(files, name="many", server=proc.url, token=proc.token, progress=False)
        nt.publish(timeseries(seed=1, hours=2), name="model/forecast.zarr", server=proc.url,
                   token=proc.token, progress=False)
        yield proc
    finally:
        proc.stop()


def test_a_site_with_more_entries_than_a_page_is_read_whole(many: SiteProcess, tmp_path: Path) -> None:
    """The client reads every page of the catalog API: entries past the first page open."""
    client = SiteClient(many.url, cache=tmp_path / "cache")
    assert len(client.entries("RV-Meteor")) == 1201
    assert sum(1 for _ in client.entries("RV-Meteor").values()) == 1201


def test_opening_one_entry_costs_the_same_at_any_number_of_entries(many: SiteProcess, tmp_path: Path) -> None:
    """nt:// over a server finds an entry, and a key inside a zarr entry, with one
    lookup each: it never lists the site's entries to open one."""
    import xarray as xr

    fs = NTFileSystem(server=many.url, cache=str(tmp_path / "cache"))
    asked: list[str] = []
    fs.backend.cached.hooks["response"].append(lambda r, *a, **k: asked.append(r.request.path_url))
    assert fs.cat_file("nt://RV-Meteor/many/f1199.txt") == b"sonde 1199"
    ds = xr.open_zarr(fs.get_mapper("nt://RV-Meteor/model/forecast.zarr"))
    assert ds[next(iter(ds.data_vars))].values.size > 0
    assert not [p for p in asked if "/entries?" in p], asked  # no listing of the site
    lookups = {p.split("/entries/")[1].split("?")[0] for p in asked if "/entries/" in p}
    # the file entry once, and the zarr entry once per metadata key zarr asks for at
    # once when opening; reading its chunks asks nothing more
    assert {p.rsplit("/", 1)[-1] for p in lookups} <= {"f1199.txt", ".zattrs", ".zgroup", ".zmetadata",
                                                       ".zarray", "zarr.json"}, lookups


def test_listing_a_folder_reads_only_that_folder(many: SiteProcess, tmp_path: Path) -> None:
    """nt:// ``ls`` and ``info`` of a folder ask the server for the names under it, a
    page at a time, never for every entry of the site."""
    fs = NTFileSystem(server=many.url, cache=str(tmp_path / "cache"))
    asked: list[str] = []
    fs.backend.cached.hooks["response"].append(lambda r, *a, **k: asked.append(r.request.path_url))
    assert fs.info("nt://RV-Meteor/model")["type"] == "directory"
    assert fs.ls("nt://RV-Meteor/model", detail=False) == ["RV-Meteor/model/forecast.zarr"]
    assert len(fs.ls("nt://RV-Meteor/many", detail=False)) == 1200
    listings = [p for p in asked if "/entries?" in p]
    assert listings and all("prefix=" in p for p in listings), listings

