"""Publishing through the site server: with the Python API and the CLI, uploading only
what the server lacks, resuming an interrupted upload, and the commit endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, auth, object_files, start, status

import eurec4a_nt
from eurec4a_nt.chunking import cut_bytes
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.stores.http import HTTPStore

MB = 1_000_000


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteProcess]:
    proc = start(tmp_path / "sites", "RV-Meteor")
    try:
        yield proc
    finally:
        proc.stop()


def _entries(proc: SiteProcess) -> dict[str, dict]:
    body = requests.get(f"{proc.url}/api/sites/RV-Meteor/entries", timeout=TIMEOUT).json()
    return {e["name"]: e for e in body["entries"]}


@pytest.mark.timeout(60)
def test_publish_with_the_api_then_again_uploads_nothing(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "radiosonde.nc"
    path.write_bytes(os.urandom(3 * MB))
    entry = eurec4a_nt.publish(path, name="sondes/radiosonde.nc", topics=["sondes"],
                               description="level 2", server=site.url, token=site.token, progress=False)
    assert (entry.site, entry.name, entry.size, entry.topics) == ("RV-Meteor", "sondes/radiosonde.nc",
                                                                 3 * MB, ("sondes",))
    first = status(site.url)
    assert first["traffic"]["uploaded"] >= 3 * MB
    assert first["objects"]["count"] == object_files(site.store)
    assert requests.get(f"{site.url}/data/RV-Meteor/sondes/radiosonde.nc", timeout=TIMEOUT).content \
        == path.read_bytes()

    again = eurec4a_nt.publish(path, name="sondes/radiosonde.nc", topics=["sondes"],
                               server=site.url, token=site.token, progress=False)
    second = status(site.url)
    assert again.root == entry.root
    assert second["traffic"]["uploaded"] == first["traffic"]["uploaded"]  # not one object sent
    assert second["objects"]["count"] == first["objects"]["count"]
    assert second["sites"]["RV-Meteor"]["seq"] == 2  # but a new commit


@pytest.mark.timeout(60)
def test_publish_with_the_cli_and_a_token_from_the_environment(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "quicklook.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000))
    env = {**os.environ, "EUREC4A_NT_TOKEN": site.token}
    done = subprocess.run([sys.executable, "-m", "eurec4a_nt", "publish", str(path), "--server", site.url,
                           "--name", "quicklooks/radar.png", "--topic", "quicklook", "-q"],
                          env=env, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "published RV-Meteor/quicklooks/radar.png (file, png" in done.stdout
    entry = _entries(site)["quicklooks/radar.png"]
    assert entry["topics"] == ["quicklook"] and entry["format"] == "png"
    r = requests.get(f"{site.url}/data/RV-Meteor/quicklooks/radar.png", timeout=TIMEOUT)
    assert r.headers["Content-Type"] == "image/png"
    assert r.content == path.read_bytes()

    env.pop("EUREC4A_NT_TOKEN")
    done = subprocess.run([sys.executable, "-m", "eurec4a_nt", "publish", str(path), "--server", site.url,
                           "--name", "quicklooks/other.png", "-q"],
                          env=env, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "token" in done.stderr and "Traceback" not in done.stderr
    assert "quicklooks/other.png" not in _entries(site)


@pytest.mark.timeout(60)
def test_rerun_after_an_interrupted_upload_sends_only_the_rest(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "model.nc"
    path.write_bytes(os.urandom(12 * MB))
    blocks = [(block.id, data) for block, data in cut_bytes(path.read_bytes())]
    assert len(blocks) >= 4
    sent_before = blocks[: len(blocks) // 2]
    with requests.Session() as http:
        http.headers.update(auth(site))
        HTTPStore(site.url, http).put_many(sent_before)  # the LAN dropped after these
    before = status(site.url)["traffic"]["uploaded"]
    assert before == sum(len(d) for _, d in sent_before)

    eurec4a_nt.publish(path, name="model/model.nc", server=site.url, token=site.token, progress=False)
    rest = sum(len(d) for _, d in blocks[len(blocks) // 2:])
    uploaded = status(site.url)["traffic"]["uploaded"] - before
    assert rest <= uploaded < rest + 10_000  # the rest of the blocks plus the file record
    assert requests.get(f"{site.url}/data/RV-Meteor/model/model.nc", timeout=TIMEOUT).content \
        == path.read_bytes()


@pytest.mark.timeout(60)
def test_publish_a_dataset_and_remove_it(site: SiteProcess) -> None:
    xr = pytest.importorskip("xarray")
    np = pytest.importorskip("numpy")
    ds = xr.Dataset({"ta": ("time", np.arange(100.0))}, coords={"time": np.arange(100)})
    entry = eurec4a_nt.publish(ds, name="model/ta.zarr", topics=["model"], server=site.url,
                               token=site.token, progress=False)
    assert entry.kind == "zarr"
    assert "model/ta.zarr" in _entries(site)
    eurec4a_nt.remove("model/ta.zarr", server=site.url, token=site.token)
    assert "model/ta.zarr" not in _entries(site)
    assert status(site.url)["sites"]["RV-Meteor"]["seq"] == 2


@pytest.mark.timeout(60)
def test_commit_of_objects_never_uploaded_names_the_missing_one(site: SiteProcess) -> None:
    absent = "cd" * 32
    change = {"op": "put", "name": "sondes/ghost.nc",
              "entry": {"name": "sondes/ghost.nc", "kind": "file", "root": absent, "size": 10,
                        "format": "netcdf"}}
    r = requests.post(f"{site.url}/api/commit", json={"changes": [change]}, headers=auth(site),
                      timeout=TIMEOUT)
    body = assert_error(r, 404, "object-missing")
    assert absent in body["message"]
    assert status(site.url)["sites"]["RV-Meteor"]["seq"] == 0


@pytest.mark.timeout(60)
def test_commit_whose_sizes_do_not_match_its_record_is_refused(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(50_000))
    entry = eurec4a_nt.publish(path, name="a.bin", server=site.url, token=site.token, progress=False)
    lying = {**entry.to_json(), "name": "b.bin", "size": entry.size + 1}
    r = requests.post(f"{site.url}/api/commit", headers=auth(site), timeout=TIMEOUT,
                      json={"changes": [{"op": "put", "name": "b.bin", "entry": lying}]})
    assert "size" in assert_error(r, 400, "bad-input")["message"]
    r = requests.post(f"{site.url}/api/commit", headers=auth(site), timeout=TIMEOUT,
                      json={"changes": [{"op": "remove", "name": "never-published.nc"}]})
    assert_error(r, 404, "not-found")
    assert status(site.url)["sites"]["RV-Meteor"]["seq"] == 1


@pytest.mark.timeout(60)
def test_prefetch_rules_are_added_listed_and_removed(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "plan.pdf"
    path.write_bytes(b"%PDF" + os.urandom(10_000))
    eurec4a_nt.publish(path, name="planning/plan.pdf", topics=["planning"], server=site.url,
                       token=site.token, progress=False)
    rule = eurec4a_nt.prefetch(topics=["planning"], server=site.url, token=site.token, progress=False)
    assert rule["topics"] == ["planning"] and rule["entries"] == 1 and rule["complete"] == 1
    assert rule["objects_held"] == rule["objects_needed"] > 0
    rules = requests.get(f"{site.url}/api/prefetch", timeout=TIMEOUT).json()["rules"]
    assert [r["id"] for r in rules] == [rule["id"]]
    assert status(site.url)["prefetch"] == [{k: rule[k] for k in ("id", "topics", "sites", "names")}]
    r = requests.delete(f"{site.url}/api/prefetch/{rule['id']}", headers=auth(site), timeout=TIMEOUT)
    assert r.json() == {"removed": rule["id"]}
    assert requests.get(f"{site.url}/api/prefetch", timeout=TIMEOUT).json() == {"rules": []}
    assert_error(requests.delete(f"{site.url}/api/prefetch/{rule['id']}", headers=auth(site),
                                 timeout=TIMEOUT), 404, "not-found")
    assert_error(requests.delete(f"{site.url}/api/prefetch/x", headers=auth(site), timeout=TIMEOUT),
                 404, "not-found")
