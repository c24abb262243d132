"""Publishing real files, folders, zarr stores and datasets, and reading them back through
the intake catalog: every kind of data a site shares, with values compared to the source."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import dask.array
import fsspec
import pytest
import xarray as xr

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.errors import BadInput, Corrupt, NotFound
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.manifests import Manifest
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.tree import walk

pytestmark = pytest.mark.timeout(120)

SITE = "RV-Meteor"


def objects(store: SiteStore) -> set[ObjectId]:
    return set(store.objects.ids())


def catalog_entry(store: SiteStore, name: str) -> Any:
    """The intake source of an entry of this store's own site."""
    return nt.open_catalog(store=store.path)[SITE][name]


def assert_lazy(ds: xr.Dataset) -> None:
    """Every data variable is a dask array (nothing read yet)."""
    assert ds.data_vars
    for name, var in ds.data_vars.items():
        assert isinstance(var.data, dask.array.Array), f"{name} was loaded eagerly"


# -- netCDF ---------------------------------------------------------------------------------


def test_netcdf4_round_trip_is_lazy_and_equal(store: SiteStore, tmp_path: Path) -> None:
    path = sd.sonde(tmp_path / "sonde.nc", seed=1)
    entry = nt.publish(path, "sondes/2020-02-01T1045.nc", topics=["sondes"], store=store.path)
    assert (entry.site, entry.kind, entry.format) == (SITE, "file", "netcdf")
    assert entry.size == path.stat().st_size
    source = catalog_entry(store, "sondes/2020-02-01T1045.nc")
    ds = source.to_dask()
    assert_lazy(ds)
    with xr.open_dataset(path, engine="h5netcdf") as expected:
        xr.testing.assert_identical(ds.load(), expected.load())
        xr.testing.assert_identical(source.read(), expected)


def test_netcdf3_round_trip(store: SiteStore, tmp_path: Path) -> None:
    """A classic netCDF (CDF magic, opened with scipy) goes the same way."""
    path = tmp_path / "surface.nc"
    sd.timeseries(seed=2, hours=6).to_netcdf(path, engine="scipy")
    entry = nt.publish(path, "surface/day1.nc", store=store.path)
    assert entry.format == "netcdf"
    ds = catalog_entry(store, "surface/day1.nc").to_dask()
    assert_lazy(ds)
    with xr.open_dataset(path, engine="scipy") as expected:
        xr.testing.assert_identical(ds.load(), expected.load())


# -- zarr -------------------------------------------------------------------------------------


def test_dataset_round_trip_as_zarr(store: SiteStore) -> None:
    source_ds = sd.timeseries(seed=3, hours=24)
    entry = nt.publish(source_ds, "bco/surface.zarr", topics=["processed"], store=store.path)
    assert (entry.kind, entry.format) == ("zarr", "zarr")
    manifest = Manifest.from_bytes(store.objects.get(entry.root))
    assert manifest.type == "zarr" and "zarr.json" in manifest.keys()
    assert entry.size == manifest.size
    ds = catalog_entry(store, "bco/surface.zarr").to_dask()
    assert_lazy(ds)
    xr.testing.assert_identical(ds.load(), source_ds)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_directory_round_trip(store: SiteStore, tmp_path: Path, zarr_format: int) -> None:
    source_ds = sd.timeseries(seed=4, hours=12)
    path = tmp_path / "model.zarr"
    source_ds.to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=zarr_format == 2)
    marker = ".zgroup" if zarr_format == 2 else "zarr.json"
    assert (path / marker).exists()
    entry = nt.publish(path, "model/forecast.zarr", topics=["model"], store=store.path)
    assert (entry.kind, entry.format) == ("zarr", "zarr")
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    manifest = Manifest.from_bytes(store.objects.get(entry.root))
    consolidated = {".zmetadata"} if zarr_format == 2 else set()  # v2: added here; v3: in zarr.json
    assert set(manifest.keys()) == files | consolidated
    assert {"time/c/0", "time/0"} & set(manifest.inline)  # the coordinate travels with the manifest
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not consolidated" warning
        opened = xr.open_zarr(f"nt://{SITE}/model/forecast.zarr", storage_options={"store": str(store.path)})
    xr.testing.assert_identical(opened.load(), source_ds)
    ds = catalog_entry(store, "model/forecast.zarr").to_dask()
    assert_lazy(ds)
    xr.testing.assert_identical(ds.load(), source_ds)


def test_zarr_metadata_and_coordinates_are_inline_and_consolidated(store: SiteStore) -> None:
    source = sd.timeseries(seed=2, hours=48).chunk(time=36)
    entry = nt.publish(source, "model/series.zarr", store=store.path)
    manifest = Manifest.from_bytes(store.objects.get(entry.root))
    root = json.loads(manifest.inline["zarr.json"])
    assert set(root["consolidated_metadata"]["metadata"]) == set(source.variables)
    assert {"time/c/0", "height/c/0", "ta/zarr.json"} <= set(manifest.inline)
    assert not any(key.startswith("ta/c/") for key in manifest.inline)  # data stays in objects
    for data in manifest.inline.values():  # no object of their own
        assert ObjectId.of(data) not in objects(store)
    assert entry.size == manifest.size == sum(map(len, manifest.inline.values())) + sum(
        r.size for r in manifest.items.values())
    damaged = json.loads(store.objects.get(entry.root))
    damaged["inline"]["time/c/0"] = "not base64!"
    with pytest.raises(Corrupt):
        Manifest.from_bytes(json.dumps(damaged).encode())
    fs = fsspec.filesystem("nt", store=str(store.path))
    assert fs.cat(f"{SITE}/model/series.zarr/time/c/0") == manifest.inline["time/c/0"]
    assert "time/c/0" in [p.split("series.zarr/")[1] for p in fs.find(f"{SITE}/model/series.zarr")]


def test_appending_a_time_step_adds_only_new_chunks_and_metadata(store: SiteStore) -> None:
    day = sd.timeseries(seed=5, hours=24).chunk(time=6)  # an hour per chunk
    first = nt.publish(day, "bco/radar.zarr", store=store.path)
    total = objects(store)
    longer = sd.timeseries(seed=5, hours=25).chunk(time=6)
    second = nt.publish(longer, "bco/radar.zarr", store=store.path)
    new = objects(store) - total
    assert first.root != second.root and second.root in new
    # a new chunk (hour 24) of each data variable and the new manifest, which holds the
    # rewritten time coordinate (an index: one chunk) and the changed zarr.json inline
    assert len(new) == 6, len(new)
    old = Manifest.from_bytes(store.objects.get(first.root))
    manifest = Manifest.from_bytes(store.objects.get(second.root))
    changed = {k for k in manifest.keys() if old.ref(k) != manifest.ref(k)}
    assert {k for k in changed if not k.endswith("zarr.json")} == {
        "ta/c/24", "rh/c/24", "lwp/c/24", "dbz/c/24/0", "vm/c/24/0", "time/c/0"}
    assert {manifest.items[k].id for k in changed if k in manifest.items} | {second.root} == new
    ds = catalog_entry(store, "bco/radar.zarr").to_dask()
    assert ds.sizes["time"] == 150
    xr.testing.assert_identical(ds.load(), longer.load())
    assert store.log(SITE).seq == 2
    assert store.state(SITE).previous["bco/radar.zarr"].root == first.root


def test_appending_with_default_chunks_writes_only_the_tail(store: SiteStore) -> None:
    """Without chunking of its own a dataset is cut about 1 MiB along time, so ten days
    plus an hour rewrite only the last chunks."""
    nt.publish(sd.timeseries(seed=6, hours=240), "bco/ten-days.zarr", store=store.path)
    before = objects(store)
    before_bytes = sum(store.objects.size(o) for o in before)
    nt.publish(sd.timeseries(seed=6, hours=241), "bco/ten-days.zarr", store=store.path)
    new = objects(store) - before
    new_bytes = sum(store.objects.size(o) for o in new)
    assert new_bytes * 3 < before_bytes
    assert len(new) < len(before)


# -- files and folders ------------------------------------------------------------------


def test_png_round_trip(store: SiteStore, tmp_path: Path) -> None:
    path = sd.quicklook_png(tmp_path / "ql.png", seed=1, title="BCO cloud radar")
    entry = nt.publish(path, "quicklooks/bco.png", topics=["quicklook"], store=store.path)
    assert entry.format == "png" and entry.kind == "file"
    source = catalog_entry(store, "quicklooks/bco.png")
    data = path.read_bytes()
    assert source.read() == data
    with source.open() as f:
        assert f.read() == data
        f.seek(100)
        assert f.read(50) == data[100:150]
    local = Path(source.local_path(tmp_path / "out"))
    assert local.read_bytes() == data
    with pytest.raises(TypeError, match="not a dataset"):
        source.to_dask()


def test_pdf_round_trip(store: SiteStore, tmp_path: Path) -> None:
    path = sd.planning_pdf(tmp_path / "plan.pdf", seed=1, target_bytes=5_000_000)
    entry = nt.publish(path, "planning/RF05.pdf", topics=["planning"], store=store.path)
    assert entry.format == "pdf"
    source = catalog_entry(store, "planning/RF05.pdf")
    data = path.read_bytes()
    assert source.read() == data
    with source.open() as f:
        f.seek(len(data) - 6)
        assert f.read() == b"%%EOF\n"
        f.seek(3_000_000)
        assert f.read(10_000) == data[3_000_000:3_010_000]
    assert Path(source.local_path(tmp_path / "out")).read_bytes() == data


def test_markdown_round_trip(store: SiteStore, tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# Flight RF05\n\nCircles at 10.5 km, sondes every 3 minutes. \u00b0C\n",
                    encoding="utf-8")
    entry = nt.publish(path, store=store.path, topics="blog")
    assert (entry.name, entry.format, entry.topics) == ("README.md", "markdown", ("blog",))
    source = catalog_entry(store, "README.md")
    assert source.read() == path.read_bytes()
    with source.open("rb") as f:
        assert f.read().decode("utf-8").startswith("# Flight RF05")


def test_directory_round_trip(store: SiteStore, tmp_path: Path) -> None:
    import fsspec

    post = sd.blog_markdown(tmp_path / "day-12", seed=1, images=2)
    (post / "data").mkdir()
    big = sd.raw_file(post / "data" / "raw.bin", size=6 << 20, seed=1)  # larger than a block
    entry = nt.publish(post, "blog/day-12", topics=["blog"], store=store.path)
    assert (entry.kind, entry.format) == ("directory", "directory")
    assert entry.size == sum(p.stat().st_size for p in post.rglob("*") if p.is_file())
    fs = fsspec.filesystem("nt", store=str(store.path))
    assert fs.ls(f"{SITE}/blog/day-12", detail=False) == [
        f"{SITE}/blog/day-12/data", f"{SITE}/blog/day-12/figure-1.png",
        f"{SITE}/blog/day-12/figure-2.png", f"{SITE}/blog/day-12/index.md"]
    assert fs.cat(f"{SITE}/blog/day-12/index.md") == (post / "index.md").read_bytes()
    assert fs.cat(f"{SITE}/blog/day-12/data/raw.bin") == big.read_bytes()
    assert fs.cat_file(f"{SITE}/blog/day-12/data/raw.bin", 5_000_000, 5_000_100) == \
        big.read_bytes()[5_000_000:5_000_100]
    assert fs.info(f"{SITE}/blog/day-12/figure-1.png")["size"] == (post / "figure-1.png").stat().st_size
    copy = Path(catalog_entry(store, "blog/day-12").local_path(tmp_path / "out"))
    assert copy.is_dir()
    _, mismatch, errors = filecmp.cmpfiles(
        post, copy, ["index.md", "figure-1.png", "figure-2.png", "data/raw.bin"], shallow=False)
    assert (mismatch, errors) == ([], [])


# -- dedup, replace, remove --------------------------------------------------------------


def test_same_bytes_under_two_names_add_no_objects(store: SiteStore, tmp_path: Path) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=9 << 20, seed=7)
    first = nt.publish(path, "raw/a.bin", store=store.path)
    held = objects(store)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(path.read_bytes())
    second = nt.publish(copy, "raw/b.bin", topics=["raw"], store=store.path)
    assert objects(store) == held
    assert first.root == second.root
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "one.bin").write_bytes(path.read_bytes())
    (folder / "two.bin").write_bytes(path.read_bytes())
    nt.publish(folder, "raw/folder", store=store.path)
    assert len(objects(store) - held) == 1  # only the directory manifest is new
    assert set(store.entries(SITE)) == {"raw/a.bin", "raw/b.bin", "raw/folder"}


def test_republishing_replaces_and_remove_removes(store: SiteStore, tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("first version\n")
    nt.publish(a, "notes/today.txt", store=store.path)
    a.write_text("second version\n")
    second = nt.publish(a, "notes/today.txt", store=store.path, description="revised")
    assert store.log(SITE).seq == 2
    assert store.entry(SITE, "notes/today.txt").root == second.root
    assert catalog_entry(store, "notes/today.txt").read() == b"second version\n"
    nt.remove("notes/today.txt", store=store.path)
    assert store.log(SITE).seq == 3
    assert "notes/today.txt" not in nt.open_catalog(store=store.path)[SITE]
    with pytest.raises(NotFound, match="no entry"):
        nt.remove("notes/today.txt", store=store.path)
    assert store.log(SITE).seq == 3


def test_publishing_several_paths_is_one_commit(store: SiteStore, tmp_path: Path) -> None:
    paths = [sd.dropsonde(tmp_path / f"D{k}.nc", seed=k) for k in range(3)]
    entries = nt.publish(paths, "sondes/RF05", topics=["sondes"], store=store.path)
    assert [e.name for e in entries] == [f"sondes/RF05/D{k}.nc" for k in range(3)]
    assert store.log(SITE).seq == 1
    for entry in entries:
        assert all(n.held for n in walk(entry, store.objects))


def test_a_name_ending_in_a_slash_is_the_folder_paths_go_in(store: SiteStore, tmp_path: Path) -> None:
    """Like watch's ``--prefix lidar/``: one path or several, each under its own file name."""
    paths = [sd.dropsonde(tmp_path / f"D{k}.nc", seed=k) for k in range(2)]
    one = nt.publish(paths[0], "sondes/RF06/", store=store.path)
    assert not isinstance(one, list) and one.name == "sondes/RF06/D0.nc"
    assert [e.name for e in nt.publish(paths, "sondes/RF07/", store=store.path)] == \
        ["sondes/RF07/D0.nc", "sondes/RF07/D1.nc"]
    with pytest.raises(BadInput, match="one at a time"):
        nt.publish(xr.Dataset(), "model/", store=store.path)


def test_many_small_files_are_written_in_groups(store: SiteStore, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for k in range(300):
        paths.append(tmp_path / f"note-{k:03d}.txt")
        paths[-1].write_text(f"note {k}\n")
    calls: list[int] = []
    put_many = LocalStore.put_many
    monkeypatch.setattr(LocalStore, "put_many", lambda self, items: calls.append(1) or put_many(self, items))
    assert len(nt.publish(paths, "notes", store=store.path)) == 300
    assert len(calls) == 1  # 300 blocks and 300 records made durable together
    assert store.log(SITE).seq == 1
    assert nt.open_catalog(store=store.path)[SITE]["notes/note-007.txt"].read() == b"note 7\n"


def test_publishing_without_a_progress_bar_does_not_load_one(store: SiteStore, tmp_path: Path) -> None:
    """``progress=False`` costs nothing: tqdm (tens of milliseconds to import) stays unloaded."""
    (tmp_path / "a.txt").write_text("a\n")
    script = ("import sys, eurec4a_nt as nt\n"
              "nt.publish(sys.argv[1], 'a.txt', store=sys.argv[2], progress=False)\n"
              "print('tqdm' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.txt"), str(store.path)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False"]
    assert store.log(SITE).seq == 1


def test_a_failed_publish_of_many_paths_commits_nothing(store: SiteStore, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    gone = tmp_path / "gone.txt"
    gone.write_text("soon gone\n")
    original = nt.publish.__globals__["build_entry"]

    def flaky(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if obj == gone:
            raise OSError("disk went away")
        return original(obj, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(nt.publish.__globals__, "build_entry", flaky)
        with pytest.raises(OSError):
            nt.publish([good, gone], "notes", store=store.path)
    assert store.log(SITE).seq == 0 and objects(store) == set()


def test_format_and_metadata_are_kept(store: SiteStore, tmp_path: Path) -> None:
    path = tmp_path / "log.dat"
    path.write_bytes(b"t,ta\n0,300.1\n")
    entry = nt.publish(path, "raw/log.dat", format="csv", description="ship log",
                       metadata={"instrument": "DSHIP", "levels": [1, 2]}, store=store.path)
    assert entry.format == "csv"
    source = catalog_entry(store, "raw/log.dat")
    assert source.metadata["instrument"] == "DSHIP"
    assert source.metadata["levels"] == [1, 2]
    assert source.description == "ship log"
