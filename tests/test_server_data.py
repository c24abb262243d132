"""``/data`` and the catalogs with stock tools (fsspec's HTTP filesystem, xarray, plain
intake) and with ``eurec4a_nt.open_catalog``, online and then offline."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import fsspec
import intake
import numpy as np
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, assert_error, start, status

import eurec4a_nt
from eurec4a_nt.client import OfflineWarning
from eurec4a_nt.demokit.sites import SiteProcess

NC = "sondes/radiosondes.nc"
ZARR = "model/forecast.zarr"
N = 20_000


def _sondes() -> xr.Dataset:
    rng = np.random.default_rng(1)
    return xr.Dataset(
        {"ta": ("time", rng.random(N)),
         "spectra": (("time", "bin"), rng.random((N, 200)))},  # the bulk of the file: 32 MB
        coords={"time": np.arange(N)}, attrs={"title": "radiosondes"})


def _forecast() -> xr.Dataset:
    rng = np.random.default_rng(2)
    return xr.Dataset({"u": (("time", "level"), rng.random((48, 30)))},
                      coords={"time": np.arange(48), "level": np.arange(30) * 100.0})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteProcess, Path]]:
    """A server holding a large netCDF file entry and a zarr entry (from a Dataset)."""
    root = tmp_path_factory.mktemp("data")
    proc = start(root / "sites", "RV-Meteor")
    try:
        path = root / "radiosondes.nc"
        _sondes().to_netcdf(path, engine="h5netcdf")
        eurec4a_nt.publish(path, name=NC, topics=["sondes"], server=proc.url, token=proc.token,
                           progress=False)
        eurec4a_nt.publish(_forecast(), name=ZARR, topics=["model"], server=proc.url,
                           token=proc.token, progress=False)
        yield proc, path
    finally:
        proc.stop()


@pytest.mark.timeout(60)
def test_netcdf_entry_opens_lazily_through_fsspec_http(site: tuple[SiteProcess, Path]) -> None:
    proc, path = site
    size = path.stat().st_size
    before = status(proc.url)["traffic"]["served"]
    with fsspec.open(f"{proc.url}/data/RV-Meteor/{NC}").open() as f:
        ds = xr.open_dataset(f, engine="h5netcdf")
        np.testing.assert_array_equal(ds["ta"].values, _sondes()["ta"].values)
        assert ds.attrs["title"] == "radiosondes"
        assert ds["spectra"].shape == (N, 200)  # known, not read
    served = status(proc.url)["traffic"]["served"] - before
    assert 0 < served < size / 2, (served, size)


@pytest.mark.timeout(60)
def test_file_entry_range_and_headers(site: tuple[SiteProcess, Path]) -> None:
    proc, path = site
    data = path.read_bytes()
    url = f"{proc.url}/data/RV-Meteor/{NC}"
    r = requests.get(url, headers={"Range": "bytes=1000000-1000099"}, timeout=TIMEOUT)
    assert r.status_code == 206
    assert r.content == data[1_000_000:1_000_100]
    assert r.headers["Content-Type"] == "application/x-netcdf"
    assert r.headers["Cache-Control"] == "no-cache"  # a name can be published again
    etag = r.headers["ETag"]
    head = requests.head(url, timeout=TIMEOUT)
    assert int(head.headers["Content-Length"]) == len(data) and head.headers["ETag"] == etag
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=TIMEOUT).status_code == 304


@pytest.mark.timeout(60)
def test_zarr_entry_opens_with_xr_open_zarr_over_http(site: tuple[SiteProcess, Path]) -> None:
    proc, _ = site
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata: no "not consolidated" warning
        ds = xr.open_zarr(f"{proc.url}/data/RV-Meteor/{ZARR}")
    xr.testing.assert_equal(ds.load(), _forecast())


@pytest.mark.timeout(60)
def test_netcdf_entry_opens_as_zarr_reading_only_its_chunks(site: tuple[SiteProcess, Path]) -> None:
    proc, path = site
    before = status(proc.url)["traffic"]["served"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated: no warning
        ds = xr.open_zarr(f"{proc.url}/zarr/RV-Meteor/{NC}")
    opened = status(proc.url)["traffic"]["served"] - before
    # the index coordinate and the consolidated metadata (from the record), nothing else
    assert ds["time"].nbytes < opened < ds["time"].nbytes + 4096
    expected = xr.open_dataset(path, engine="h5netcdf")
    xr.testing.assert_equal(ds["ta"].load(), expected["ta"])
    assert ds.attrs["title"] == "radiosondes"
    chunk = requests.get(f"{proc.url}/zarr/RV-Meteor/{NC}/ta/0", timeout=TIMEOUT)
    assert chunk.content == expected["ta"].values.tobytes()[:len(chunk.content)]
    meta = requests.get(f"{proc.url}/zarr/RV-Meteor/{NC}/.zmetadata", timeout=TIMEOUT).json()["metadata"]
    assert set(meta) >= {".zgroup", "ta/.zarray", "spectra/.zarray"}
    rows = meta["spectra/.zarray"]["chunks"][0]  # a contiguous variable shown in chunks of whole rows
    assert N % rows == 0 and rows * 200 * 8 <= 128 << 10
    before = status(proc.url)["traffic"]["served"]
    few = ds["spectra"][N // 2, :5].values
    assert (few == expected["spectra"][N // 2, :5].values).all()
    assert status(proc.url)["traffic"]["served"] - before == rows * 200 * 8  # one chunk
    part = requests.get(f"{proc.url}/zarr/RV-Meteor/{NC}/ta/0", headers={"Range": "bytes=8-15"}, timeout=TIMEOUT)
    assert part.status_code == 206 and part.content == chunk.content[8:16]
    assert_error(requests.get(f"{proc.url}/zarr/RV-Meteor/{NC}/nothing/0", timeout=TIMEOUT), 404, "not-found")
    assert_error(requests.get(f"{proc.url}/zarr/RV-Meteor/{ZARR}/u/c/0/0", timeout=TIMEOUT), 404, "not-found")


@pytest.mark.timeout(60)
def test_zarr_entry_folders_list_as_html_or_json(site: tuple[SiteProcess, Path]) -> None:
    proc, _ = site
    url = f"{proc.url}/data/RV-Meteor/{ZARR}"
    listing = requests.get(url + "/", headers={"Accept": "application/json"}, timeout=TIMEOUT).json()
    assert listing["files"] == ["zarr.json"] and set(listing["dirs"]) == {"u", "time", "level"}
    page = requests.get(url + "/u", timeout=TIMEOUT)
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<a href="zarr.json">' in page.text and '<a href="c/">' in page.text
    meta = requests.get(url + "/u/zarr.json", timeout=TIMEOUT)
    assert meta.headers["Content-Type"] == "application/json"
    assert meta.json()["shape"] == [48, 30]
    assert_error(requests.get(url + "/nothing/here", timeout=TIMEOUT), 404, "not-found")


@pytest.mark.timeout(60)
def test_plain_intake_opens_the_served_catalog(site: tuple[SiteProcess, Path]) -> None:
    proc, _ = site
    cat = intake.open_catalog(f"{proc.url}/catalog.yaml")
    assert list(cat) == ["RV-Meteor"]
    sites = cat["RV-Meteor"]
    assert set(sites) == {NC.split("/")[0], ZARR.split("/")[0]}  # one catalog per folder
    entry = sites[NC.split("/")[0]][NC.split("/")[1]]
    metadata = entry.reader.metadata  # intake-xarray keeps it on the reader
    assert metadata["topics"] == ["sondes"] and metadata["site"] == "RV-Meteor"
    ds = entry.to_dask()
    np.testing.assert_array_equal(ds["ta"].values, _sondes()["ta"].values)
    xr.testing.assert_equal(sites[ZARR.split("/")[0]][ZARR.split("/")[1]].to_dask().load(), _forecast())
    yaml_text = requests.get(f"{proc.url}/sites/RV-Meteor/catalog.yaml", timeout=TIMEOUT).text
    assert proc.url in yaml_text  # entries read back from this server


@pytest.mark.timeout(60)
def test_open_catalog_works_and_then_works_offline_with_a_warning(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    try:
        eurec4a_nt.publish(_forecast(), name=ZARR, topics=["model"], server=proc.url,
                           token=proc.token, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", OfflineWarning)
            cat = eurec4a_nt.open_catalog(server=proc.url)
            assert list(cat["RV-Meteor"]) == ["model"]
            xr.testing.assert_equal(cat["RV-Meteor"][ZARR].to_dask().load(), _forecast())
    finally:
        proc.stop()
    cat = eurec4a_nt.open_catalog(server=proc.url)  # reads nothing yet
    with pytest.warns(OfflineWarning, match="unreachable"):
        assert list(cat["RV-Meteor"]) == ["model"]
    assert cat["RV-Meteor"][ZARR].metadata["topics"] == ["model"]


@pytest.mark.timeout(60)
def test_small_answers_are_revalidated_with_etags(site: tuple[SiteProcess, Path]) -> None:
    proc, _ = site
    for path in ("/catalog.yaml", "/sites/RV-Meteor/catalog.yaml", "/api/sites",
                 "/api/sites/RV-Meteor/entries"):
        r = requests.get(proc.url + path, timeout=TIMEOUT)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache", path
        again = requests.get(proc.url + path, headers={"If-None-Match": r.headers["ETag"]}, timeout=TIMEOUT)
        assert again.status_code == 304 and again.content == b"", path
