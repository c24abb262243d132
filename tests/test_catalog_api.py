"""Catalogs that scale, on a real site server: one small catalog per folder (stock
intake drivers, what the campaign's catalog checks for), series by date, the JSON
catalog API with paging and search, and 304s from the log head."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import intake
import numpy as np
import pytest
import requests
import xarray as xr
import yaml
from server_kit import assert_error, start

import eurec4a_nt as nt
from eurec4a_nt.catalog import STOCK_DRIVERS, parts_of
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadInput, NotFound
from eurec4a_nt.folders import Folder
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)

SITE = "RV-Meteor"
TIMEOUT = 30
#: Launch times of the soundings: three on one day, two on the next.
LAUNCHES = ["2020-02-01T0445", "2020-02-01T1045", "2020-02-01T2245", "2020-02-02T0445", "2020-02-02T1045"]
#: The drivers the campaign's catalog accepts (its CI rejects every other one).
CAMPAIGN_DRIVERS = {"netcdf", "zarr", "opendap", "textfiles", "yaml_file_cat", "intake_remote"}


def publish_campaign(store: Path, files: Path) -> None:
    """Soundings of two days, a radar day file, a quicklook, a post, a folder and a zarr."""
    files.mkdir()
    for i, launch in enumerate(LAUNCHES):
        when = f"{launch[:10]}T{launch[11:13]}:{launch[13:]}:00"
        sonde = sd.sonde(files / f"{launch}.nc", seed=i, levels=40 + i, launch_time=when)
        nt.publish(sonde, f"sondes/{launch}.nc", topics=["sondes"], store=store)
    nt.publish(sd.quicklook_png(files / "ql.png", seed=7, target_bytes=5_000), "quicklooks/ceilometer.png",
               topics=["quicklook"], description="ceilometer today", store=store)
    (files / "post.md").write_text("# Day 1\n\nRain.\n")
    nt.publish(files / "post.md", "blog/day-1.md", topics=["blog"], store=store)
    notes = files / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("a\n")
    (notes / "b.txt").write_text("b\n")
    nt.publish(notes, "notes/day-1", store=store)
    nt.publish(sd.timeseries(seed=3, hours=6), "surface/met.zarr", topics=["processed"], store=store)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    root = tmp_path_factory.mktemp("sites")
    make_sites(root, [SITE])
    publish_campaign(root / SITE, root / "files")
    proc = start(root, SITE)
    try:
        yield proc
    finally:
        proc.stop()


def get(proc: SiteProcess, path: str, **params: Any) -> Any:
    response = requests.get(proc.url + path, params=params, timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def test_entries_come_in_pages_in_name_order(server: SiteProcess) -> None:
    names, after, pages = [], "", 0
    while True:
        body = get(server, f"/api/sites/{SITE}/entries", limit=3, after=after)
        assert body["matched"] == body["total"] == 9 and len(body["entries"]) <= 3
        names += [e["name"] for e in body["entries"]]
        pages += 1
        if not body["next"]:
            break
        after = body["next"]
    assert pages == 3 and names == sorted(names) and len(set(names)) == 9
    assert "blog" in body["topics"] and "sondes" in body["topics"]


def test_entries_are_searched_by_prefix_topic_text_and_time(server: SiteProcess) -> None:
    path = f"/api/sites/{SITE}/entries"
    assert get(server, path, prefix="sondes/")["matched"] == 5
    assert [e["name"] for e in get(server, path, topic="quicklook")["entries"]] == ["quicklooks/ceilometer.png"]
    assert [e["name"] for e in get(server, path, q="CEILOMETER TODAY")["entries"]] == ["quicklooks/ceilometer.png"]
    day = get(server, path, prefix="sondes/", since="2020-02-02", until="2020-02-02T23:59")
    assert [e["name"] for e in day["entries"]] == [f"sondes/{t}.nc" for t in LAUNCHES[3:]]
    newest = get(server, path, order="newest", limit=4)["entries"]
    assert newest[0]["name"] == "surface/met.zarr"  # published last
    assert [e["published"] for e in newest] == sorted((e["published"] for e in newest), reverse=True)
    assert_error(requests.get(server.url + path, params={"order": "random"}, timeout=TIMEOUT), 400, "bad-input")
    paged = get(server, path, prefix="sondes/", since="2020-02-01", limit=2)
    assert paged["matched"] == 5 and paged["next"] == "sondes/2020-02-01T1045.nc"
    # times in any ISO 8601 spelling, compared in UTC; an entry at the very time given is in
    for since, until in (("2020-02-01T10:45Z", ""), ("2020-02-01 10:45", ""), ("2020-02-01T12:45+02:00", ""),
                         ("20200201T1045", "20200202")):
        found = get(server, path, prefix="sondes/", since=since, until=until)
        assert [e["name"] for e in found["entries"]] == [f"sondes/{t}.nc" for t in LAUNCHES[1:]], since
    assert get(server, path, prefix="sondes/", until="2020-02-01T04:45+00:00")["matched"] == 1
    for bad in ({"limit": "0"}, {"limit": "many"}, {"since": "yesterday"}, {"topic": "Bad Topic"}):
        assert_error(requests.get(server.url + path, params=bad, timeout=TIMEOUT), 400, "bad-input")
    one = get(server, f"/api/sites/{SITE}/entries/sondes/{LAUNCHES[0]}.nc")
    assert one["entry"]["format"] == "netcdf" and one["storage_options"]["server"] == server.url
    assert_error(requests.get(f"{server.url}/api/sites/{SITE}/entries/sondes/none.nc", timeout=TIMEOUT), 404)
    assert_error(requests.get(f"{server.url}/api/sites/Nowhere/entries", timeout=TIMEOUT), 404)


def test_folders_hold_sub_folders_series_and_entries(server: SiteProcess) -> None:
    top = get(server, f"/api/sites/{SITE}/folder")
    assert top["folders"] == {"blog": 1, "notes": 1, "quicklooks": 1, "surface": 1}
    assert [p["key"] for p in top["products"]] == ["sondes"] and top["entries"] == []
    sondes = top["products"][0]
    assert (sondes["count"], sondes["first"][:10], sondes["last"][:10]) == (5, "2020-02-01", "2020-02-02")
    inner = get(server, f"/api/sites/{SITE}/folder", prefix="quicklooks/")
    assert [e["name"] for e in inner["entries"]] == ["quicklooks/ceilometer.png"]
    assert_error(requests.get(f"{server.url}/api/sites/{SITE}/folder", params={"prefix": "nothing/"},
                              timeout=TIMEOUT), 404, "not-found")


def test_an_unchanged_catalog_is_a_304_and_a_new_commit_changes_it(server: SiteProcess, tmp_path: Path) -> None:
    paths = ["/catalog.yaml", f"/sites/{SITE}/catalog.yaml", f"/sites/{SITE}/quicklooks/catalog.yaml",
             f"/sites/{SITE}/sondes/days.yaml", f"/api/sites/{SITE}/entries?limit=2", f"/api/sites/{SITE}/folder"]
    tags = {}
    for path in paths:
        first = requests.get(server.url + path, timeout=TIMEOUT)
        assert first.status_code == 200 and first.headers["Cache-Control"] == "no-cache", path
        tags[path] = first.headers["ETag"]
        again = requests.get(server.url + path, headers={"If-None-Match": tags[path]}, timeout=TIMEOUT)
        assert (again.status_code, again.content) == (304, b""), path
    note = tmp_path / "note.md"
    note.write_text("# later\n")
    nt.publish(note, "blog/day-2.md", server=server.url, token=server.token, progress=False)
    changed = requests.get(server.url + f"/sites/{SITE}/catalog.yaml", headers={"If-None-Match": tags[paths[1]]},
                           timeout=TIMEOUT)
    assert changed.status_code == 200 and changed.headers["ETag"] != tags[paths[1]]
    blog = intake.open_catalog(f"{server.url}/sites/{SITE}/blog/catalog.yaml")
    assert sorted(blog) == ["day-1.md", "day-2.md"]
    nt.remove("blog/day-2.md", server=server.url, token=server.token)


def _walk(cat: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every source below ``cat`` as (path, driver, entry), nested catalogs opened."""
    for name, entry in cat._entries.items():
        drivers = entry.describe()["driver"]
        driver = drivers[0] if drivers else "(none)"
        yield f"{path}/{name}", driver, entry
        if driver == "yaml_file_cat":
            yield from _walk(entry(), f"{path}/{name}")


def test_the_campaign_catalog_nests_ours_and_passes_its_driver_check(server: SiteProcess, tmp_path: Path) -> None:
    """The campaign's catalog file nests the server's and, like its CI, rejects any
    driver outside its list; then opens one source of every kind, with stock drivers."""
    campaign = tmp_path / "catalog.yml"
    campaign.write_text(f"""
sources:
  {SITE}:
    description: entries of the ship, as its server shares them
    driver: yaml_file_cat
    args:
      path: {server.url}/sites/{SITE}/catalog.yaml
""")
    found = {path: driver for path, driver, _ in _walk(intake.open_catalog(str(campaign)))}
    assert set(found.values()) <= CAMPAIGN_DRIVERS and set(found.values()) <= {*STOCK_DRIVERS}, found
    assert {f"/{SITE}/sondes/2020-02-01", f"/{SITE}/surface/met.zarr", f"/{SITE}/notes/day-1"} <= set(found)
    surface = yaml.safe_load(requests.get(f"{server.url}/sites/{SITE}/surface/catalog.yaml", timeout=TIMEOUT).text)
    assert surface["sources"]["met.zarr"]["args"]["consolidated"] is True  # published with consolidated metadata
    ship = intake.open_catalog(str(campaign))[SITE]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about consolidated metadata either
        met = ship["surface"]["met.zarr"].to_dask()
    assert met.sizes["time"] == 36
    day = ship["sondes"]["2020-02-01"].to_dask()
    assert day.sizes["entry"] == 3 and day.sizes["alt"] >= 42  # all levels of the 3 soundings
    assert ship["quicklooks"]["ceilometer.png"].read()[:4] == b"\x89PNG"
    assert ship["blog"]["day-1.md"].read().startswith(b"# Day 1")
    assert ship["notes"]["day-1"].read() == b"a\nb\n"  # the files of a folder, one after the other


def test_a_series_opens_by_date_or_time_range_as_one_dataset(server: SiteProcess) -> None:
    ship = nt.open_catalog(server=server.url)[SITE]
    assert sorted(ship) == ["blog", "notes", "quicklooks", "sondes", "surface"]
    day = ship.sondes(date="2020-02-01").to_dask()
    assert day.sizes["entry"] == 3
    np.testing.assert_array_equal(day["entry"].values.astype("datetime64[m]"),
                                  np.array(["2020-02-01T04:45", "2020-02-01T10:45", "2020-02-01T22:45"],
                                           dtype="datetime64[m]"))
    single = ship[f"sondes/{LAUNCHES[1]}.nc"].to_dask()  # one entry by its full name
    xr.testing.assert_equal(day.isel(entry=1, drop=True).dropna("alt", how="all").load(),
                            single.load().reindex(alt=day.alt).dropna("alt", how="all"))
    assert ship.sondes["2020-02-02"].to_dask().sizes["entry"] == 2
    assert ship.sondes(start="2020-02-01T10:00", end="2020-02-02T05:00").to_dask().sizes["entry"] == 3
    assert [e.name for e in ship.sondes(date="2020-02-02").entries()] == [f"sondes/{t}.nc" for t in LAUNCHES[3:]]
    with pytest.raises(BadInput, match="date="):
        ship.sondes.to_dask()
    with pytest.raises(BadInput, match="bad date"):
        ship.sondes(date="someday").to_dask()
    with pytest.raises(NotFound, match="2020-02-01T04:45:00 to 2020-02-02T10:45:00"):
        ship.sondes(date="2020-03-01").to_dask()
    for edge in ({"date": "9999-12-31"}, {"start": "9999-12-31T23:59"}, {"start": "0001-01-01", "end": "2020-01-31"}):
        with pytest.raises(NotFound, match="has no entries"):
            ship.sondes(**edge).entries()
    assert len(ship.sondes(end="9999-12-31").entries()) == 5
    assert len(ship.sondes(start="2020-02-02T06:45+02:00").entries()) == 2  # 04:45 UTC


def test_a_catalog_asked_at_a_point_is_not_served_to_others(server: SiteProcess) -> None:
    """A catalog pinned to the log's current head (``?at=`` its seq or a later time)
    names ``/at/`` URLs; the catalog of now, asked after it, names none, and each is
    kept under its own ETag. Unknown query keys do not make answers of their own."""
    path = f"/sites/{SITE}/catalog.yaml"
    pinned = requests.get(server.url + path, params={"at": "2999-01-01T00:00Z"}, timeout=TIMEOUT)
    now = requests.get(server.url + path, timeout=TIMEOUT)
    assert pinned.status_code == now.status_code == 200
    assert "/at/2999-01-01T00%3A00%3A00Z/sites/" in pinned.text and "/at/" not in now.text
    assert pinned.headers["ETag"] != now.headers["ETag"]
    entries = f"/api/sites/{SITE}/entries"
    plain = requests.get(server.url + entries, params={"limit": 2}, timeout=TIMEOUT)
    noise = requests.get(server.url + entries, params={"limit": 2, "x": "1"}, timeout=TIMEOUT)
    assert plain.headers["ETag"] == noise.headers["ETag"] and plain.json() == noise.json()


def test_catalogs_opened_again_and_again_hold_no_files_open(server: SiteProcess) -> None:
    """Each ``open_catalog(store=)`` opens the store's files; they close with the last
    catalog reading from it (a notebook reopening its catalog in a loop)."""
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    for i in range(30):
        sub = nt.open_catalog(store=server.store)[SITE]["notes"]
        assert list(sub) == ["day-1"]
        del sub
        gc.collect()
        if i == 4:
            before = open_files()
    assert open_files() <= before + 2


def test_a_series_from_a_store_is_the_same(server: SiteProcess) -> None:
    from_store = nt.open_catalog(store=server.store)[SITE].sondes(date="2020-02-01").to_dask()
    from_server = nt.open_catalog(server=server.url)[SITE].sondes(date="2020-02-01").to_dask()
    xr.testing.assert_identical(from_store.load(), from_server.load())


def test_data_folders_list_entries_for_browsers_and_fsspec(server: SiteProcess) -> None:
    page = requests.get(f"{server.url}/data/{SITE}/", timeout=TIMEOUT)
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<a href="sondes/">' in page.text and '<a href="surface/">' in page.text
    listing = requests.get(f"{server.url}/data/{SITE}/sondes", headers={"Accept": "application/json"},
                           timeout=TIMEOUT).json()
    assert listing["files"] == [f"{t}.nc" for t in LAUNCHES] and listing["dirs"] == []
    assert_error(requests.get(f"{server.url}/data/{SITE}/nothing/", timeout=TIMEOUT), 404, "not-found")


#: Opens every kind of entry from the served catalog, where only stock packages are installed.
_STOCK = """
import importlib.util, json, sys
import intake
assert importlib.util.find_spec("eurec4a_nt") is None
ship = intake.open_catalog(sys.argv[1] + "/catalog.yaml")["RV-Meteor"]
out = {
    "sonde": float(ship["sondes"]["2020-02-02"].to_dask()["ta"].isel(entry=0, alt=0)),
    "day": [str(t)[:16] for t in ship["sondes"]["2020-02-01"].to_dask()["entry"].values],
    "zarr": ship["surface"]["met.zarr"].to_dask().sizes["time"],
    "png": ship["quicklooks"]["ceilometer.png"].read()[:4].hex(),
    "md": ship["blog"]["day-1.md"].read().decode(),
    "folder": ship["notes"]["day-1"].read().decode(),
}
print(json.dumps(out))
"""
#: uv's cache, found before the tests give each test a home of its own.
UV_CACHE = os.environ.get("UV_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "uv")
#: jinja2: intake 2 reads intake v1 YAML catalogs with it but does not require it; h5py:
#: h5netcdf reads HDF5 with it but does not require it either.
STOCK_PACKAGES = ("intake", "intake-xarray", "fsspec", "xarray", "h5netcdf", "h5py", "zarr", "aiohttp", "requests",
                  "jinja2")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plain_intake_in_a_fresh_virtualenv_opens_every_kind(server: SiteProcess, tmp_path: Path) -> None:
    """A virtualenv with only intake, intake-xarray, fsspec, xarray and the readers
    they use (wheels from uv's cache, at the versions of uv.lock; the package index is
    asked only when its pages are not cached), never this package."""
    root = Path(__file__).resolve().parent.parent
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": "", "UV_CACHE_DIR": UV_CACHE}

    def run(*args: str | Path, timeout: float = 300, check: bool = True) -> str:
        done = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path, check=False)
        assert done.returncode == 0 or not check, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout if done.returncode == 0 else ""

    pins = tmp_path / "pins.txt"
    run(uv, "export", "--project", root, "--frozen", "--all-extras", "--no-hashes", "--no-emit-project",
        "--no-header", "--output-file", pins)
    run(uv, "venv", "--python", sys.executable, tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    install = ("pip", "install", "--python", python, "--constraint", pins, *STOCK_PACKAGES)
    if not run(uv, *install, "--offline", check=False):  # the index pages were not cached yet
        run(uv, *install)
    result = run(python, "-c", _STOCK, server.url, timeout=120)
    out = json.loads(result.strip().splitlines()[-1])
    assert 250 < out["sonde"] < 320 and out["zarr"] == 36
    assert out["day"] == ["2020-02-01T04:45", "2020-02-01T10:45", "2020-02-01T22:45"]  # the times as coordinate
    assert out["png"] == "89504e47" and out["md"].startswith("# Day 1") and out["folder"] == "a\nb\n"


def test_an_entry_that_holds_a_path_is_found_in_one_request(server: SiteProcess) -> None:
    path = f"/api/sites/{SITE}/entries/"
    inside = get(server, path + "surface/met.zarr/ta/zarr.json", within="1")
    assert inside["entry"]["name"] == "surface/met.zarr" and inside["inner"] == "ta/zarr.json"
    assert inside["nested"] is False
    itself = get(server, path + "blog/day-1.md", within="1")
    assert (itself["entry"]["name"], itself["inner"]) == ("blog/day-1.md", "")
    assert_error(requests.get(server.url + path + "surface/met.zarr/ta/zarr.json", timeout=TIMEOUT),
                 404, "not-found")  # without within=1: names only
    assert_error(requests.get(server.url + path + "sondes/none/x", params={"within": "1"}, timeout=TIMEOUT),
                 404, "not-found")


_DEEP = """
import json, sys
import intake
cat = intake.open_catalog(sys.argv[1] + "/catalog.yaml")
photos = cat[sys.argv[2]]["photos"]
parts = list(photos)
part = photos["IMG_0*"]
ds = part["IMG_0777.nc"].to_dask()
print(json.dumps({"parts": parts, "in_part": len(list(part)), "ta0": float(ds.ta[0]),
                  "ours": "eurec4a_nt" in sys.modules}))
"""


def test_a_large_folder_is_listed_in_small_parts_plain_intake_walks_down(tmp_path: Path) -> None:
    """1,500 entries in one folder: its catalog lists two parts by their first
    characters (at most 1,000 entries each), and plain intake in a fresh interpreter
    opens an entry of one; a part is revalidated with its ETag, an unknown part is a 404."""
    make_sites(tmp_path, [SITE])
    store = SiteStore(tmp_path / SITE)
    fake = [Entry(name=f"photos/IMG_{i:04d}.png", kind="file", root=ObjectId.of(b"%d" % i), size=10, format="png")
            for i in range(1500) if i != 777]
    store.commit([Change("put", e.name, e) for e in fake])
    sonde = sd.sonde(tmp_path / "s.nc", seed=4)
    nt.publish(sonde, "photos/IMG_0777.nc", store=store.path)
    proc = start(tmp_path, SITE)
    try:
        url = f"{proc.url}/sites/{SITE}/photos/catalog.yaml"
        listed = yaml.safe_load(requests.get(url, timeout=TIMEOUT).text)["sources"]
        assert list(listed) == ["IMG_0*", "IMG_1*"]
        assert listed["IMG_1*"]["metadata"] | {"entries": 500, "first": "IMG_1000.png", "last": "IMG_1499.png"} \
            == listed["IMG_1*"]["metadata"]
        done = subprocess.run([sys.executable, "-c", _DEEP, proc.url, SITE], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["parts"] == ["IMG_0*", "IMG_1*"] and out["in_part"] == 1000 and not out["ours"]
        assert 250 < out["ta0"] < 320
        part = requests.get(url, params={"part": "IMG_1*"}, timeout=TIMEOUT)
        assert sorted(yaml.safe_load(part.text)["sources"])[:2] == ["IMG_1000.png", "IMG_1001.png"]
        again = requests.get(url, params={"part": "IMG_1*"}, headers={"If-None-Match": part.headers["ETag"]},
                             timeout=TIMEOUT)
        assert (again.status_code, again.content) == (304, b"")
        assert_error(requests.get(url, params={"part": "IMG_2*"}, timeout=TIMEOUT), 404, "not-found")
        assert list(nt.open_catalog(server=proc.url)[SITE]["photos"])[:2] == ["IMG_0000.png", "IMG_0001.png"]
    finally:
        proc.stop()


def test_parts_of_timestamped_names_are_days() -> None:
    """Names that each carry a time (and so form no series) are split by day."""
    names = [f"cam/{day}T{h:02d}{m:02d}_{i}.jpg" for i, (day, h, m) in enumerate(
        (d, h, m) for d in ("2020-02-01", "2020-02-02") for h in range(24) for m in range(0, 60, 5))]
    folder = Folder(SITE, "cam/", entries=[Entry(n, "file", ObjectId.of(n.encode()), 1, "jpg") for n in names])
    parts = parts_of(folder, size=300)
    assert {k: len(v) for k, v in parts.items()} == {"2020-02-01": 288, "2020-02-02": 288}
    assert parts_of(folder, size=1000) == {}
    by_start = parts_of(folder, size=200)  # a day is too large: by the first characters
    assert all(len(v) <= 200 for v in by_start.values()) and sum(map(len, by_start.values())) == 576
    assert all(key.endswith("*") for key in by_start)


def test_catalogs_kept_over_a_restart_follow_the_log(tmp_path: Path) -> None:
    """A restarted server answers the catalog it built before (same ETag, same text)
    and, after a commit made while it was down, the new one."""
    make_sites(tmp_path, [SITE])
    store = SiteStore(tmp_path / SITE)
    first = Entry(name="sondes/a.nc", kind="file", root=ObjectId.of(b"a"), size=1, format="netcdf")
    store.commit([Change("put", first.name, first)])
    proc = start(tmp_path, SITE)
    url = f"/sites/{SITE}/catalog.yaml"
    try:
        before = requests.get(proc.url + url, timeout=TIMEOUT)
    finally:
        proc.stop()
    assert (tmp_path / SITE / "state" / "catalogs.sqlite").exists()
    for change in (None, Entry(name="blog/late.md", kind="file", root=ObjectId.of(b"b"), size=1, format="md")):
        if change is not None:
            store.commit([Change("put", change.name, change)])
        proc = SiteProcess(tmp_path / SITE, port=proc.port, env=proc.env).start()
        try:
            after = requests.get(proc.url + url, timeout=TIMEOUT)
        finally:
            proc.stop()
        listed = sorted(yaml.safe_load(after.text)["sources"])
        if change is None:
            assert (after.headers["ETag"], after.text, listed) == (before.headers["ETag"], before.text, ["sondes"])
        else:
            assert after.headers["ETag"] != before.headers["ETag"] and listed == ["blog", "sondes"]
