"""Versions and time travel against a real site server: an entry republished three
times opens at each version by time and by position; the catalog at a past point
lists what it listed then; conditional requests; purge with a retention rule."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, start

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import NotFound, ObjectMissing
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.versions import Version, history

pytestmark = pytest.mark.timeout(240)
NAME = "sondes/latest.nc"
SITE = "RV-Meteor"


def nt_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out


def moment() -> datetime:
    """A time strictly between the commit before and the one after."""
    time.sleep(0.02)
    now = datetime.now(UTC)
    time.sleep(0.02)
    return now


def test_republished_entry_opens_at_every_version(tmp_path: Path) -> None:
    server = start(tmp_path, "RV-Meteor")
    try:
        pub = {"server": server.url, "token": server.token}
        files = [sd.sonde(tmp_path / f"s{i}.nc", seed=i) for i in range(3)]
        times = []
        for i, path in enumerate(files):  # seqs 1, 3, 5; a quicklook at 2, removed at 4
            nt.publish(path, name=NAME, topics="sondes", **pub)
            times.append(moment())
            if i == 0:
                nt.publish(sd.quicklook_png(tmp_path / "ql.png", seed=9), name="ql.png", **pub)
                before_removal = moment()
            if i == 1:
                nt.remove("ql.png", **pub)

        source = nt.open_catalog(server=server.url)["RV-Meteor"][NAME]
        versions = source.versions
        assert [(v.seq, v.op, v.replaces, v.replaced_by) for v in versions] == [
            (1, "put", None, 3), (3, "put", 1, 5), (5, "put", 3, None)]
        for i, (version, when) in enumerate(zip(versions, times, strict=True)):
            expected = xr.open_dataset(files[i]).load()
            for point in (version, version.seq, when.isoformat()):  # by position and by time
                xr.testing.assert_equal(source.at(point).to_dask().load(), expected)
            pinned = nt.open_catalog(server=server.url, at=when)  # the whole catalog at that time
            xr.testing.assert_equal(pinned["RV-Meteor"][NAME].to_dask().load(), expected)
            data = requests.get(f"{server.url}/data/RV-Meteor/{NAME}", params={"at": version.seq},
                                timeout=TIMEOUT)
            assert data.content == files[i].read_bytes()

        # the catalog at a past point lists what it listed then
        assert "ql.png" not in list(nt.open_catalog(server=server.url)["RV-Meteor"])
        then = nt.open_catalog(server=server.url, at=before_removal)["RV-Meteor"]
        assert sorted(then) == ["ql.png", "sondes"] and list(then["sondes"]) == ["latest.nc"]
        assert then["ql.png"].read() == (tmp_path / "ql.png").read_bytes()
        assert sorted(nt.open_catalog(server=server.url, at=1)["RV-Meteor"]) == ["sondes"]
        local = nt.open_catalog(store=server.store, at=before_removal)["RV-Meteor"]  # the same from a store
        assert sorted(local) == ["ql.png", "sondes"] and local["ql.png"].read() == then["ql.png"].read()
        removed = requests.get(f"{server.url}/api/sites/RV-Meteor/versions/ql.png", timeout=TIMEOUT).json()
        assert [(v["seq"], v["op"], v["replaced_by"]) for v in removed["versions"]] == [
            (2, "put", 4), (4, "remove", None)]
        with pytest.raises(NotFound):
            source.at(0)

        # "has anything changed?" is one small request
        url = f"{server.url}/data/RV-Meteor/{NAME}"
        first = requests.get(url, params={"at": 1}, timeout=TIMEOUT)
        assert requests.get(url, params={"at": 1}, headers={"If-None-Match": first.headers["ETag"]},
                            timeout=TIMEOUT).status_code == 304
        assert requests.get(url, headers={"If-None-Match": first.headers["ETag"]},
                            timeout=TIMEOUT).status_code == 200  # republished since
        top = requests.get(f"{server.url}/at/2/catalog.yaml", timeout=TIMEOUT)  # for stock intake
        assert f"{server.url}/at/2/sites/RV-Meteor/catalog.yaml" in top.text
        assert requests.get(f"{server.url}/at/2/catalog.yaml", headers={"If-None-Match": top.headers["ETag"]},
                            timeout=TIMEOUT).status_code == 304
        folder = requests.get(f"{server.url}/at/1/sites/RV-Meteor/sondes/catalog.yaml", timeout=TIMEOUT).text
        assert f"{server.url}/at/1/data/RV-Meteor/sondes/latest.nc" in folder
        old = requests.get(f"{server.url}/at/1/data/RV-Meteor/sondes/latest.nc", timeout=TIMEOUT)
        assert old.content == files[0].read_bytes()

        # the command line: an entry's log, and get at a point
        out = nt_cmd("log", f"RV-Meteor/{NAME}", "--server", server.url)
        lines = out.stdout.splitlines()
        assert [line.split()[0] for line in lines] == ["RV-Meteor#1", "RV-Meteor#3", "RV-Meteor#5"]
        assert "replaced by #3" in lines[0] and "replaces #3" in lines[2]
        nt_cmd("get", f"RV-Meteor/{NAME}", str(tmp_path / "got.nc"), "--at", times[1].isoformat(),
               "--server", server.url, "-q")
        assert (tmp_path / "got.nc").read_bytes() == files[1].read_bytes()
        out = nt_cmd("purge", "--dry-run", "--server", server.url, "--token", server.token)
        assert out.stdout.startswith("would free") and "of 3 old versions" in out.stdout
    finally:
        server.stop()


def test_purge_keeps_what_the_retention_rule_keeps(store: SiteStore, tmp_path: Path) -> None:
    files = [sd.raw_file(tmp_path / f"r{i}.bin", size=500_000, seed=i) for i in range(4)]
    for path in files:
        nt.publish(path, name="raw.bin", store=store.path)
    nt.publish(files[0], name="copy.bin", store=store.path)  # shares version 1's bytes
    log_before = (store.path / "logs" / "RV-Meteor.jsonl").read_bytes()
    out = nt_cmd("purge", "--keep", "1", "--dry-run", "--store", str(store.path))
    assert out.stdout.startswith("would free") and "of 1 old versions" in out.stdout
    out = nt_cmd("purge", "--keep", "1", "--store", str(store.path))
    assert "of 1 old versions" in out.stdout  # version 2 goes; 1 is still copy.bin's; 3 is kept
    assert (store.path / "logs" / "RV-Meteor.jsonl").read_bytes() == log_before  # history stays
    source = nt.open_catalog(store=store.path)["RV-Meteor"]["raw.bin"]
    assert [v.seq for v in source.versions] == [1, 2, 3, 4]
    assert source.at(1).read() == files[0].read_bytes()
    assert source.at(3).read() == files[2].read_bytes()
    assert source.read() == files[3].read_bytes()
    with pytest.raises((ObjectMissing, FileNotFoundError)):
        source.at(2).read()


def test_versions_of_a_name_are_those_of_a_walk_of_the_log_also_for_an_earlier_state(store: SiteStore) -> None:
    """The rows of which commits changed each name give the same versions as a walk of
    every commit: kept as commits apply, and made again for a state written without them."""
    rng = random.Random(5)
    pool = [f"d{i % 3}/n{i}.nc" for i in range(30)]
    held: set[str] = set()
    for _ in range(60):
        changes = []
        for name in rng.sample(pool, rng.randint(1, 8)):
            if name in held and rng.random() < 0.3:
                changes.append(Change("remove", name))
                held.discard(name)
            else:
                entry = Entry(name=name, kind="file", root=ObjectId.of(f"{name}{rng.random()}".encode()),
                              size=1, format="netcdf")
                changes.append(Change("put", name, entry))
                held.add(name)
        store.commit(changes)

    def walked(name: str) -> list[Version]:
        return history(list(store.log(SITE)), SITE, name)

    for name in pool:
        assert store.versions(SITE, name) == walked(name)
    with sqlite3.connect(store.path / "state" / "logs.sqlite") as db:  # as an earlier version left it
        db.execute("DELETE FROM name_changes")
        db.execute("DELETE FROM versioned")
    store.commit([Change("remove", next(iter(held)))])  # applied while the rows are not current
    again = SiteStore(store.path)
    for name in pool:
        assert again.versions(SITE, name) == walked(name)
    with pytest.raises(NotFound):
        again.versions(SITE, "never/there.nc")
