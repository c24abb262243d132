"""``/objects``: GET with Range, HEAD, ETag and caching headers; the missing/batch
negotiation; single and framed uploads; concurrent publishers (a real server over HTTP)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, auth, start, status

import eurec4a_nt
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.frames import iter_frames
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.stores.http import HTTPStore

DATA = os.urandom(100_000)
OID = hashlib.sha256(DATA).hexdigest()
ABSENT = "ab" * 32


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A running RV-Meteor server holding DATA."""
    proc = start(tmp_path_factory.mktemp("objects"), "RV-Meteor")
    try:
        r = requests.put(f"{proc.url}/objects/{OID}", data=DATA, headers=auth(proc), timeout=TIMEOUT)
        assert r.status_code in (200, 201), r.text
        yield proc
    finally:
        proc.stop()


@pytest.mark.timeout(30)
def test_get_whole_object_with_immutable_caching_headers(site: SiteProcess) -> None:
    r = requests.get(f"{site.url}/objects/{OID}", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["ETag"] == f'"{OID}"'
    assert "immutable" in r.headers["Cache-Control"]
    assert r.headers["Accept-Ranges"] == "bytes"
    assert int(r.headers["Content-Length"]) == len(DATA)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=10-19", 10, 20),
    ("bytes=99990-", 99990, 100_000),
    ("bytes=-25", 99975, 100_000),
    ("bytes=50000-200000", 50000, 100_000),  # clipped at the end
])
def test_range_answers_206_with_content_range(site: SiteProcess, header: str, start: int, end: int) -> None:
    r = requests.get(f"{site.url}/objects/{OID}", headers={"Range": header}, timeout=TIMEOUT)
    assert r.status_code == 206
    assert r.content == DATA[start:end]
    assert r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert int(r.headers["Content-Length"]) == end - start


@pytest.mark.timeout(30)
def test_range_outside_the_object_is_416_json(site: SiteProcess) -> None:
    r = requests.get(f"{site.url}/objects/{OID}", headers={"Range": "bytes=100000-100010"}, timeout=TIMEOUT)
    assert_error(r, 416, "range-not-satisfiable")
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"
    r = requests.get(f"{site.url}/objects/{OID}", headers={"Range": "bytes=0-1,5-9"}, timeout=TIMEOUT)
    assert_error(r, 400, "bad-input")


@pytest.mark.timeout(30)
def test_head_and_conditional_get(site: SiteProcess) -> None:
    r = requests.head(f"{site.url}/objects/{OID}", timeout=TIMEOUT)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(DATA)
    assert r.headers["ETag"] == f'"{OID}"'
    assert r.content == b""
    for tag in (f'"{OID}"', f'W/"{OID}"', f'"{ABSENT}", "{OID}"', "*"):
        r = requests.get(f"{site.url}/objects/{OID}", headers={"If-None-Match": tag}, timeout=TIMEOUT)
        assert r.status_code == 304, tag
        assert r.content == b""
    r = requests.get(f"{site.url}/objects/{OID}", headers={"If-None-Match": f'"{ABSENT}"'}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == DATA
    # An id names its bytes forever: a client holding them needs no answer, even from a
    # server that does not hold the object.
    r = requests.get(f"{site.url}/objects/{ABSENT}", headers={"If-None-Match": f'"{ABSENT}"'}, timeout=TIMEOUT)
    assert r.status_code == 304 and "immutable" in r.headers["Cache-Control"]


@pytest.mark.timeout(30)
def test_missing_lists_only_absent_ids(site: SiteProcess) -> None:
    r = requests.post(f"{site.url}/objects/missing", json={"ids": [OID, ABSENT, OID]}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {"missing": [ABSENT]}


@pytest.mark.timeout(30)
def test_batch_frames_present_and_absent_objects(site: SiteProcess) -> None:
    r = requests.post(f"{site.url}/objects/batch", json={"ids": [OID, ABSENT]}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/x-eurec4a-nt-frames")
    assert r.content.startswith(f"{OID} {len(DATA)}\n".encode())
    assert r.content.endswith(f"{ABSENT} -1\n".encode())
    assert list(iter_frames(io.BytesIO(r.content))) == [(OID, DATA), (ABSENT, None)]
    with requests.Session() as http:
        store = HTTPStore(site.url, http)
        assert store.size(ObjectId.parse(OID)) == len(DATA)
        assert store.get_range(ObjectId.parse(OID), 5, 15) == DATA[5:15]


@pytest.mark.timeout(30)
def test_put_one_object(site: SiteProcess) -> None:
    data = os.urandom(1000)
    oid = hashlib.sha256(data).hexdigest()
    r = requests.put(f"{site.url}/objects/{oid}", data=data, headers=auth(site), timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (201, {"id": oid, "stored": True})
    r = requests.put(f"{site.url}/objects/{oid}", data=data, headers=auth(site), timeout=TIMEOUT)
    assert (r.status_code, r.json()) == (200, {"id": oid, "stored": False})
    assert requests.get(f"{site.url}/objects/{oid}", timeout=TIMEOUT).content == data


@pytest.mark.timeout(30)
def test_framed_upload_stores_only_what_is_new(site: SiteProcess) -> None:
    parts = [os.urandom(n) for n in (10, 5000, 70_000)]
    with requests.Session() as http:
        http.headers.update(auth(site))
        store = HTTPStore(site.url, http)
        before = status(site.url)["traffic"]["uploaded"]
        items = [(ObjectId.of(p), p) for p in parts]
        assert store.put_many(items) == [oid for oid, _ in items]
        assert status(site.url)["traffic"]["uploaded"] - before == sum(map(len, parts))
        assert store.put_many([*items, (ObjectId.parse(OID), DATA)]) == []  # nothing sent
        assert status(site.url)["traffic"]["uploaded"] - before == sum(map(len, parts))
        assert store.missing(oid for oid, _ in items) == []


@pytest.mark.timeout(90)
def test_concurrent_publishers_of_different_names(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    try:
        files = []
        for i in range(8):
            path = tmp_path / f"sonde-{i}.bin"
            path.write_bytes(os.urandom(300_000 + i) + b"shared tail" * 1000)
            files.append(path)

        def publish(path: Path) -> eurec4a_nt.Entry:
            return eurec4a_nt.publish(path, name=f"sondes/{path.name}", topics=["sondes"],
                                      server=proc.url, token=proc.token, progress=False)

        with ThreadPoolExecutor(8) as pool:
            entries = list(pool.map(publish, files))
        assert sorted(e.name for e in entries) == sorted(f"sondes/{p.name}" for p in files)
        listed = requests.get(f"{proc.url}/api/sites/RV-Meteor/entries", timeout=TIMEOUT).json()
        assert listed["seq"] == len(files)
        assert {e["name"]: e["root"] for e in listed["entries"]} == {e.name: e.root for e in entries}
        heads = requests.get(f"{proc.url}/logs", timeout=TIMEOUT).json()["heads"]
        assert heads == {"RV-Meteor": len(files)}
        commits = requests.get(f"{proc.url}/logs/RV-Meteor?after=0", timeout=TIMEOUT).text.splitlines()
        assert len(commits) == len(files)
        for entry, path in zip(entries, files, strict=True):
            got = requests.get(f"{proc.url}/data/RV-Meteor/{entry.name}", timeout=TIMEOUT)
            assert got.content == path.read_bytes()
    finally:
        proc.stop()
