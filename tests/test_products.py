"""A site's product map on a real server: products named in the store's config.yaml
open by date through our catalog and through plain intake's stock YAML (with the
entries' times as the coordinate of ``entry``); a mistyped map stops the server with
its key named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import intake
import numpy as np
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, ship_to, start

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.errors import BadInput, NotFound
from eurec4a_nt.products import name_pattern
from eurec4a_nt.settings import StoreFile, parse
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)

SITE = "RV-Meteor"
PRODUCTS = """\
products:
  sondes:
    pattern: "sondes/RS_%Y%m%dT%H%M%SZ.nc"
    description: Radiosondes, level 2
  LIMRAD94:
    pattern: "radar/%Y/%m/%d/LIMRAD94.nc"
  ceilometer:
    pattern: "ceilometer/CHM_%Y%j.nc"
"""
#: Launch times of the soundings: three on one day, two on the next.
LAUNCHES = ["20200201T044500", "20200201T104500", "20200201T224500", "20200202T044500", "20200202T104500"]


def times(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[s]")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    root = tmp_path_factory.mktemp("sites")
    make_sites(root, [SITE])
    store, files = root / SITE, root / "files"
    with (store / "config.yaml").open("a") as config:
        config.write(PRODUCTS)
    files.mkdir()
    for i, launch in enumerate(LAUNCHES):
        nt.publish(sd.sonde(files / f"{launch}.nc", seed=i, levels=40), f"sondes/RS_{launch}Z.nc", store=store)
    for day in ("01", "02"):
        radar = sd.sonde(files / f"radar{day}.nc", seed=int(day), levels=30)
        nt.publish(radar, f"radar/2020/02/{day}/LIMRAD94.nc", store=store)
    nt.publish(sd.sonde(files / "chm.nc", seed=9, levels=20), "ceilometer/CHM_2020032.nc", store=store)
    for day in ("20200201", "20200202"):  # timestamps the map does not name: plain entries
        nt.publish(sd.sonde(files / f"{day}.nc", seed=5, levels=10), f"extra_{day}.nc", store=store)
    proc = start(root, SITE)
    try:
        yield proc
    finally:
        proc.stop()


def test_the_map_names_the_products_of_the_site(server: SiteProcess) -> None:
    ship = nt.open_catalog(server=server.url)[SITE]
    # "sondes" hides the folder of that name; "radar" stays a folder beside LIMRAD94
    assert sorted(ship) == ["LIMRAD94", "ceilometer", "extra_20200201.nc", "extra_20200202.nc", "radar", "sondes"]
    assert ship.sondes.describe()["description"].startswith("Radiosondes, level 2: 5 netcdf entries")
    assert ship.sondes.metadata["series"]["pattern"] == "sondes/RS_%Y%m%dT%H%M%SZ.nc"
    day = ship.sondes(date="2020-02-01").to_dask()
    np.testing.assert_array_equal(day["entry"].values, times("2020-02-01T04:45", "2020-02-01T10:45",
                                                             "2020-02-01T22:45"))
    span = ship.LIMRAD94(start="2020-02-01", end="2020-02-02").to_dask()  # a date as end: that whole day
    np.testing.assert_array_equal(span["entry"].values, times("2020-02-01", "2020-02-02"))
    one = ship.ceilometer(date="2020-02-01").to_dask()  # a product from its first entry on (day 32)
    assert one.sizes["entry"] == 1 and one["entry"].values[0] == np.datetime64("2020-02-01")
    with pytest.raises(NotFound, match="has no entries"):
        ship.ceilometer(date="2020-02-02").to_dask()
    assert list(ship["radar"]["2020"]["02"]) == ["01", "02"]  # the folders are still there
    assert ship["sondes/RS_20200201T104500Z.nc"].to_dask().sizes["alt"] == 40  # and so is every entry
    from_store = nt.open_catalog(store=server.store)[SITE].sondes(date="2020-02-01").to_dask()
    xr.testing.assert_identical(from_store.load(), day.load())


def test_plain_intake_opens_a_product_by_date_with_the_entry_times(server: SiteProcess) -> None:
    ship = intake.open_catalog(server.url + "/catalog.yaml")[SITE]
    assert {"sondes", "LIMRAD94", "ceilometer"} <= set(ship)
    assert list(ship["sondes"]) == ["2020-02-01", "2020-02-02"]
    stock = ship["sondes"]["2020-02-01"].to_dask()
    ours = nt.open_catalog(server=server.url)[SITE].sondes(date="2020-02-01").to_dask()
    np.testing.assert_array_equal(stock["entry"].values, ours["entry"].values)
    xr.testing.assert_equal(stock.load(), ours.load())
    alone = ship["ceilometer"]["2020-02-01"].to_dask()  # a day of one entry is that entry
    assert "entry" not in alone.dims and alone.sizes["alt"] == 20


def test_times_from_the_map_select_entries_in_the_api(server: SiteProcess) -> None:
    body = requests.get(f"{server.url}/api/sites/{SITE}/entries", timeout=TIMEOUT,
                        params={"prefix": "radar/", "since": "2020-02-02", "until": "2020-02-02T23:59"}).json()
    assert [e["name"] for e in body["entries"]] == ["radar/2020/02/02/LIMRAD94.nc"]


def test_a_hub_maps_the_products_of_the_sites_it_holds(server: SiteProcess, tmp_path: Path) -> None:
    """The hub's config names the ship's products (``products_of``); its own site keeps
    the timestamp rule."""
    make_sites(tmp_path, ["OPS"])
    hub = SiteStore(tmp_path / "OPS")
    files = tmp_path / "files"
    files.mkdir()
    for day in ("20200301", "20200302"):
        nt.publish(sd.sonde(files / f"{day}.nc", seed=1, levels=10), f"plans/plan_{day}.nc", store=hub.path)
    ship_to(SiteStore(server.store), hub)
    with (hub.path / "config.yaml").open("a") as config:
        config.write(f"products_of:\n  {SITE}:\n" + textwrap.indent(PRODUCTS.split("\n", 1)[1], "  "))
    proc = start(tmp_path, "OPS")
    try:
        cat = nt.open_catalog(server=proc.url)
        assert cat[SITE].sondes(date="2020-02-02").to_dask().sizes["entry"] == 2
        assert cat[SITE].ceilometer.describe()["description"].startswith("1 netcdf entries")
        assert list(cat["OPS"]) == ["plans"] and cat["OPS"].plans(date="2020-03-01").to_dask().sizes["entry"] == 1
        stock = intake.open_catalog(proc.url + "/catalog.yaml")[SITE]["sondes"]["2020-02-01"].to_dask()
        assert stock.sizes["entry"] == 3
    finally:
        proc.stop()


def test_a_server_restarted_with_another_map_answers_with_it(tmp_path: Path) -> None:
    """Answers kept across restarts (state/catalogs.sqlite) are not those of the old map."""
    make_sites(tmp_path, ["OPS"])
    config = tmp_path / "OPS" / "config.yaml"
    plain = config.read_text()
    (tmp_path / "a.txt").write_text("a\n")
    for day in ("20200201", "20200202"):
        nt.publish(tmp_path / "a.txt", f"logs/{day}.txt", store=tmp_path / "OPS")
    seen = []
    for products in ("first", "second"):
        config.write_text(plain + f"products:\n  {products}:\n    pattern: logs/%Y%m%d.txt\n")
        proc = start(tmp_path, "OPS", args=["--public-url", "http://ops.example:8047"])  # the same URLs
        try:
            body = requests.get(f"{proc.url}/api/sites/OPS/folder", timeout=TIMEOUT).json()
            yaml_text = requests.get(f"{proc.url}/sites/OPS/catalog.yaml", timeout=TIMEOUT).text
        finally:
            proc.stop()
        seen.append(([p["key"] for p in body["products"]], f"{products}:" in yaml_text))
    assert seen == [(["first"], True), (["second"], True)]


# (the product map, what the one error line must say)
MISTYPED = [
    ("products:\n  sondes:\n    patern: sondes/%Y%m%d.nc\n",
     "unknown key 'products.sondes.patern' (did you mean 'pattern'?)"),
    ("products:\n  sondes:\n    pattern: sondes/%Y%m%d.nc\n    description: [a]\n",
     "'products.sondes.description': Expected `str`, got `array`"),
    ("products:\n  sondes:\n    pattern: sondes/%Y%m.nc\n",
     "'products.sondes': pattern 'sondes/%Y%m.nc' must name a day"),
    ("products:\n  sondes:\n    pattern: sondes/%Y%m%d%Q.nc\n", "unknown field %Q"),
    ("products:\n  two words:\n    pattern: sondes/%Y%m%d.nc\n", "product name 'two words'"),
    ("product:\n  sondes:\n    pattern: sondes/%Y%m%d.nc\n", "unknown key 'product' (did you mean 'products'?)"),
    ("products_of:\n  RV-Meteor:\n    sondes: {pattern: sondes/%Y%m%d.nc, descriptin: x}\n",
     "unknown key 'products_of.RV-Meteor.sondes.descriptin' (did you mean 'description'?)"),
    ("products_of:\n  OPS:\n    sondes: {pattern: sondes/%Y%m%d.nc}\n", "OPS is this store's site"),
]


@pytest.mark.parametrize(("text", "says"), MISTYPED, ids=[str(i) for i in range(len(MISTYPED))])
def test_a_mistyped_product_map_stops_the_server_with_its_key(tmp_path: Path, text: str, says: str) -> None:
    make_sites(tmp_path, ["OPS"])
    with (tmp_path / "OPS" / "config.yaml").open("a") as config:
        config.write(text)
    out = subprocess.run([sys.executable, "-m", "eurec4a_nt", "serve", "--store", "OPS", "--port", "0"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
                         env={**os.environ, "EUREC4A_NT_CONFIG": str(tmp_path / "none.yaml")})
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and says in lines[0], out.stderr
    assert "config.yaml" in lines[0]


def test_patterns_say_the_time_of_a_name() -> None:
    rules = parse({"products": {"p": {"pattern": "r/%Y/%m/%d/x_%Y%m%dT%H%M*.nc"},
                                "q": {"pattern": "l/%Y%j.nc"}}}, StoreFile, "store config").products
    p, q = (name_pattern(rules[k].pattern) for k in "pq")
    assert p.head == "r/" and str(p.time_of("r/2020/02/01/x_20200201T1045_a.nc")) == "2020-02-01 10:45:00"
    assert p.time_of("r/2020/02/01/x_20200202T1045.nc") is None  # the repeated fields disagree
    assert p.time_of("r/2020/02/30/x_20200230T1045.nc") is None  # no such day
    assert p.time_of("r/2020/02/01/sub/x_20200201T1045.nc") is None  # * stays within a part
    assert str(q.time_of("l/2020060.nc")) == "2020-02-29 00:00:00" and q.time_of("l/2019366.nc") is None
    with pytest.raises(BadInput, match=r"'products\.p': pattern '/abs/%Y%m%d' must be an entry name"):
        parse({"products": {"p": {"pattern": "/abs/%Y%m%d"}}}, StoreFile, "store config")
    with pytest.raises(BadInput, match=r"'products\.p': pattern '\*_\*_.*too long: at most 512 characters and 32"):
        parse({"products": {"p": {"pattern": "*_" * 40 + "%Y%m%d"}}}, StoreFile, "store config")


@pytest.mark.timeout(20)
def test_a_hostile_name_costs_as_little_as_any() -> None:
    """Names come from other sites: against a pattern of many ``*`` (which takes a
    backtracking regular expression over a minute per 500-character name) a thousand
    such names are read in well under the test's time, and a star still takes as much
    as it can."""
    p = name_pattern("*_*_*_*_%Y%m%d*.nc")
    for k in range(1000):
        assert p.time_of("_" * (400 + k % 100)) is None
    assert str(p.time_of("a_b_c_d_20200201_e_f_20200202.nc")) == "2020-02-02 00:00:00"
    assert str(name_pattern("%Y/*%Y%m%d*").time_of("2020/x2019010120200105y")) == "2020-01-05 00:00:00"
