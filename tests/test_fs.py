"""The ``nt://`` fsspec protocol over a local site store."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
import xarray as xr

import eurec4a_nt as nt
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.errors import BadInput, ObjectMissing
from eurec4a_nt.fs import NTFileSystem
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(60)

SITE = "RV-Meteor"


@pytest.fixture
def fs(store: SiteStore) -> NTFileSystem:
    return fsspec.filesystem("nt", store=str(store.path), skip_instance_cache=True)


def test_protocol_is_registered_by_entry_point() -> None:
    assert fsspec.get_filesystem_class("nt") is NTFileSystem


def test_open_a_netcdf_file_lazily(store: SiteStore, tmp_path: Path) -> None:
    path = sd.sonde(tmp_path / "sonde.nc", seed=2)
    nt.publish(path, "sondes/x.nc", store=store.path)
    with fsspec.open(f"nt://{SITE}/sondes/x.nc", store=str(store.path)) as f:
        assert f.read() == path.read_bytes()
    with fsspec.open(f"nt://{SITE}/sondes/x.nc", store=str(store.path)) as f, \
            xr.open_dataset(f, engine="h5netcdf") as ds, \
            xr.open_dataset(path, engine="h5netcdf") as expected:
        xr.testing.assert_identical(ds.load(), expected.load())


def test_random_access_reads_only_the_blocks_needed(store: SiteStore, fs: NTFileSystem,
                                                    tmp_path: Path) -> None:
    """A store holding one block of a file serves any range inside that block."""
    path = sd.raw_file(tmp_path / "raw.bin", size=12 << 20, seed=3)
    data = path.read_bytes()
    entry = nt.publish(path, "raw/lidar.bin", store=store.path)
    blocks = FileRecord.from_bytes(store.objects.get(entry.root)).blocks
    assert len(blocks) >= 5
    keep = blocks[3]
    for block in blocks:
        if block != keep:
            store.objects.delete(block.id)
    lo, hi = keep.offset + 10, keep.offset + 5000
    assert fs.cat_file(f"{SITE}/raw/lidar.bin", lo, hi) == data[lo:hi]
    with fs.open(f"{SITE}/raw/lidar.bin", block_size=4096) as f:
        f.seek(lo)
        assert f.read(hi - lo) == data[lo:hi]
    with pytest.raises(ObjectMissing):
        fs.cat_file(f"{SITE}/raw/lidar.bin", 0, 100)


def test_cat_file_ranges(store: SiteStore, fs: NTFileSystem, tmp_path: Path) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=3_000_000, seed=4)
    data = path.read_bytes()
    nt.publish(path, "raw/x.bin", store=store.path)
    name = f"nt://{SITE}/raw/x.bin"
    assert fs.cat_file(name) == data
    assert fs.cat_file(name, start=-10) == data[-10:]
    assert fs.cat_file(name, 2_999_990, 5_000_000) == data[2_999_990:]
    assert fs.cat_file(name, 100, 100) == b""
    assert fs.cat_file(name, 1_000_000, -1_000_000) == data[1_000_000:-1_000_000]
    assert fs.size(name) == len(data)
    assert fs.ukey(name) == store.entry(SITE, "raw/x.bin").root


def test_zarr_entry_as_a_mapper(store: SiteStore, fs: NTFileSystem) -> None:
    ds = sd.timeseries(seed=5, hours=12)
    nt.publish(ds, "bco/met.zarr", store=store.path)
    mapper = fsspec.get_mapper(f"nt://{SITE}/bco/met.zarr", store=str(store.path))
    assert "zarr.json" in mapper
    assert "ta/zarr.json" in list(mapper)
    xr.testing.assert_identical(xr.open_zarr(mapper, consolidated=False).load(), ds)
    opened = xr.open_zarr(f"nt://{SITE}/bco/met.zarr", consolidated=False,
                          storage_options={"store": str(store.path)})
    xr.testing.assert_identical(opened.load(), ds)
    assert fs.isdir(f"{SITE}/bco/met.zarr")
    assert fs.isfile(f"{SITE}/bco/met.zarr/zarr.json")


def test_listing(store: SiteStore, fs: NTFileSystem, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# a\n")
    nt.publish(tmp_path / "a.md", "blog/day1/a.md", topics=["blog"], store=store.path)
    nt.publish(tmp_path / "a.md", "readme.md", store=store.path)
    assert fs.ls("", detail=False) == [SITE]
    assert fs.ls(SITE, detail=False) == [f"{SITE}/blog", f"{SITE}/readme.md"]
    assert fs.ls(f"nt://{SITE}/blog", detail=False) == [f"{SITE}/blog/day1"]
    info = fs.info(f"{SITE}/blog/day1/a.md")
    assert (info["type"], info["size"], info["format"], info["topics"]) == \
        ("file", 4, "markdown", ["blog"])
    assert fs.ls(f"{SITE}/readme.md", detail=False) == [f"{SITE}/readme.md"]
    assert fs.info(f"{SITE}/blog")["type"] == "directory"
    assert fs.find(SITE) == [f"{SITE}/blog/day1/a.md", f"{SITE}/readme.md"]
    assert fs.exists(f"{SITE}/readme.md")
    assert not fs.exists(f"{SITE}/absent.md")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{SITE}/blog/day2")
    with pytest.raises(FileNotFoundError):
        fs.open(f"{SITE}/absent.md")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{SITE}/readme.md/inside")


def test_read_only(store: SiteStore, fs: NTFileSystem, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# a\n")
    nt.publish(tmp_path / "a.md", "a.md", store=store.path)
    with pytest.raises(BadInput, match="read-only"):
        fs.open(f"{SITE}/a.md", "wb")
    assert store.log(SITE).seq == 1


def test_get_copies_a_file_and_a_directory(store: SiteStore, fs: NTFileSystem,
                                           tmp_path: Path) -> None:
    post = sd.blog_markdown(tmp_path / "post", seed=6, images=1)
    nt.publish(post, "blog/post", store=store.path)
    fs.get(f"{SITE}/blog/post", str(tmp_path / "copy"), recursive=True)
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["figure-1.png", "index.md"]
    for name in ("figure-1.png", "index.md"):
        assert (tmp_path / "copy" / name).read_bytes() == (post / name).read_bytes()
    fs.get(f"{SITE}/blog/post/index.md", str(tmp_path / "index.md"))
    assert (tmp_path / "index.md").read_bytes() == (post / "index.md").read_bytes()
