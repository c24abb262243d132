"""A malicious keyring site: commits signed with its real key but holding what no
honest site writes. Each is refused with one log line and never stored; an entry whose
records disagree with it is answered 422 for itself and breaks nothing for others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from server_kit import TIMEOUT, auth, start_with_sonde

from eurec4a_nt.chunking import record_bytes
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.schema import canonical
from eurec4a_nt.sitestore import SiteStore

ROOT = "ab" * 32


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """The hub RV-Meteor (one entry of its own) in a campaign with BCO."""
    proc = start_with_sonde(tmp_path_factory.mktemp("hostile-commits"), 10_000)
    try:
        yield proc
    finally:
        proc.stop()


def bco(hub: SiteProcess) -> SiteStore:
    return SiteStore(Path(hub.store).parent / "BCO")


def entry(**fields: Any) -> dict[str, Any]:
    return {"name": "x.bin", "kind": "file", "root": ROOT, "size": 5, "format": "binary", "topics": [],
            "description": "", "metadata": {}, "published": "", **fields}


def signed(hub: SiteProcess, changes: list[dict[str, Any]], **fields: Any) -> bytes:
    """A commit of BCO after its current head, signed with BCO's key."""
    log = bco(hub).log("BCO")
    body: dict[str, Any] = {"site": "BCO", "seq": log.seq + 1, "parent": log.current().head,
                            "time": "2020-02-01T00:00:00.000Z", "changes": changes, **fields}
    body["signature"] = bco(hub).key.sign(canonical(body))
    return canonical(body)


def send(hub: SiteProcess, raw: bytes) -> requests.Response:
    return requests.post(hub.url + "/logs", data=raw + b"\n", headers=auth(hub), timeout=TIMEOUT)


def heads(hub: SiteProcess) -> dict[str, int]:
    return requests.get(hub.url + "/logs", timeout=TIMEOUT).json()["heads"]


def assert_pages_work(hub: SiteProcess) -> None:
    for path in ("/", "/api/status", "/api/sites", "/catalog.yaml", "/sites/RV-Meteor/catalog.yaml",
                 "/api/sites/RV-Meteor/entries?held=1", "/api/prefetch", "/data/RV-Meteor/sondes/sonde.nc"):
        r = requests.get(hub.url + path, timeout=TIMEOUT)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])


PUT = [{"op": "put", "name": "x.bin"}]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("raw", [
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=float("inf"))}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=float("nan"))}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=5.0)}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=True)}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=-5)}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(size=10**40)}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(metadata={"v": float("inf")})}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(metadata=json.loads("[" * 200 + "]" * 200))}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(metadata={"v": json.loads("[" * 40 + "]" * 40)})}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(topics="sondes")}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(root="zz" * 32)}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(name="../x.bin")}]),
    lambda hub: signed(hub, [{"op": "put", "name": "../x.bin", "entry": entry(name="../x.bin")}]),
    lambda hub: signed(hub, [{"op": "remove", "name": "x.bin", "entry": entry()}]),
    lambda hub: signed(hub, [{"op": "rename", "name": "x.bin"}]),
    lambda hub: signed(hub, [{**PUT[0]}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry()}], extra="field"),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry()}], seq=1.0),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry()}], time="garbage-time"),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry(description="x" * (5 << 20))}]),
    lambda hub: signed(hub, [{**PUT[0], "entry": entry()}]).replace(b'"seq":1', b'"seq": 1'),
    lambda hub: b"[" * 100_000 + b"]" * 100_000,
    lambda hub: b'{"site": "BCO", "seq": 1e999}',
])
def test_a_malformed_commit_of_a_keyring_site_is_refused(hub: SiteProcess, raw: Any) -> None:
    before, log_before = heads(hub), hub.log_path.read_text()
    r = send(hub, raw(hub))
    assert r.status_code in (400, 409, 413), (r.status_code, r.text[:300])
    assert r.json()["error"] in ("bad-commit", "bad-input", "too-large")
    assert heads(hub) == before and "BCO" not in before
    added = hub.log_path.read_text()[len(log_before):]
    assert "Traceback" not in added and len(added.strip().splitlines()) <= 1, added
    assert_pages_work(hub)


@pytest.mark.timeout(120)
def test_an_entry_disagreeing_with_its_record_is_422_for_itself_only(hub: SiteProcess) -> None:
    """Signed and well formed, but its size differs from its file record's (and a manifest
    item's size from its object's): served neither with a wrong Content-Length nor as a 500."""
    data = os.urandom(3000)
    blocks: list[tuple[ObjectId, bytes]] = []
    record = record_bytes(data, blocks.extend).to_bytes()
    record_id = ObjectId.of(record)
    page = b"<p>hello</p>"
    manifest = json.dumps({"type": "directory", "items": {"index.html": [ObjectId.of(page), 99]}},
                          separators=(",", ":")).encode()
    for oid, body in [*blocks, (record_id, record), (ObjectId.of(page), page), (ObjectId.of(manifest), manifest)]:
        assert requests.put(f"{hub.url}/objects/{oid}", data=body, headers=auth(hub), timeout=TIMEOUT).ok
    raw = signed(hub, [
        {"op": "put", "name": "liar.bin", "entry": entry(name="liar.bin", root=record_id, size=100)},
        {"op": "put", "name": "site", "entry": entry(name="site", kind="directory", root=ObjectId.of(manifest),
                                                     size=99)},
    ])
    assert send(hub, raw).json()["added"] == ["BCO#1"]
    for path in ("/data/BCO/liar.bin", "/data/BCO/site/index.html"):
        r = requests.get(hub.url + path, timeout=TIMEOUT)
        assert r.status_code == 422 and r.json()["error"] == "corrupt", (path, r.status_code, r.headers)
    assert_pages_work(hub)
    for path in ("/api/sites/BCO/entries?held=1", "/sites/BCO/catalog.yaml"):
        assert requests.get(hub.url + path, timeout=TIMEOUT).status_code == 200
    log = hub.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]
    done = subprocess.run([sys.executable, "-m", "eurec4a_nt", "fsck", "--store", str(hub.store)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert "BCO/liar.bin" in done.stdout and "BCO/site" in done.stdout, done.stdout  # reported, not a crash
