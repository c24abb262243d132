"""A hub whose object store does not answer (as S3 may stall) keeps answering /health
and keeps its other work flowing: no store call runs on its event loop.

The hub runs in this process (so its store can be wrapped); the ships are real site
servers in subprocesses that dial it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from server_kit import InProcessHub

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.server.context import NODE
from eurec4a_nt.stores.base import ObjectStore


class GatedStore(ObjectStore):
    """A store whose every call waits until the gate is open (at most a minute)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def _pass(self) -> None:
        with self._lock:
            self.waiting += 1
        try:
            self.gate.wait(60)
        finally:
            with self._lock:
                self.waiting -= 1

    def _read(self, oid: ObjectId) -> bytes:
        self._pass()
        return self.inner.get(oid)

    def _write(self, oid: ObjectId, data: bytes) -> None:
        self._pass()
        self.inner.put(data, oid)

    def has(self, oid: ObjectId) -> bool:
        self._pass()
        return self.inner.has(oid)

    def size(self, oid: ObjectId) -> int:
        self._pass()
        return self.inner.size(oid)

    def delete(self, oid: ObjectId) -> None:
        self._pass()
        self.inner.delete(oid)

    def ids(self) -> Iterator[ObjectId]:
        self._pass()
        return self.inner.ids()


def ship(root: Path, name: str, hub: str, **link: object) -> SiteProcess:
    links = root / f"{name}-links.yaml"
    links.write_text(yaml.safe_dump({"links": [{"url": hub, **link}]}))
    return SiteProcess(root / name, args=["--links", str(links)]).start()


def listed(site: SiteProcess, owner: str, name: str) -> bool:
    answer = requests.get(f"{site.url}/api/sites/{owner}/entries", timeout=10)
    return answer.ok and any(e["name"] == name for e in answer.json()["entries"])


@pytest.mark.timeout(180)
def test_a_stalled_store_stalls_neither_health_nor_other_links(tmp_path: Path) -> None:
    make_sites(tmp_path, ["OPS", "RV-Meteor", "RV-Merian"])
    hub = InProcessHub(tmp_path / "OPS").start()
    node = hub.app[NODE]
    gated = GatedStore(node.store.objects)
    node.store.objects = gated
    meteor = merian = None
    try:
        meteor = ship(tmp_path, "RV-Meteor", hub.url, push=["raw"])
        merian = ship(tmp_path, "RV-Merian", hub.url, push=["quicklook"])
        raw = sampledata.raw_file(tmp_path / "raw.bin", size=600_000, seed=3)
        nt.publish(raw, name="raw/big.bin", topics=["raw"], server=meteor.url, token=meteor.token, progress=False)
        wait_until(lambda: gated.waiting > 0, 30, "the hub asking its store")

        # the store hangs: the hub still answers, and commits still cross it both ways
        for _ in range(5):
            assert requests.get(hub.url + "/health", timeout=5).json()["ok"]
        ql = sampledata.quicklook_png(tmp_path / "ql.png", seed=4, target_bytes=20_000)
        nt.publish(ql, name="quicklooks/a.png", topics=["quicklook"], server=merian.url, token=merian.token,
                   progress=False)
        wait_until(lambda: listed(meteor, "RV-Merian", "quicklooks/a.png"), 30, "Merian's commit at Meteor")
        assert gated.waiting > 0  # all that while, the store did not answer

        gated.gate.set()  # the store answers again: nothing was lost
        wait_until(lambda: node.store.objects.inner.has(ObjectId.parse(
            next(e for e in node.entries() if e.name == "raw/big.bin").root)), 60, "the raw file at the hub")
    finally:
        gated.gate.set()
        for site in (meteor, merian):
            if site is not None:
                site.stop()
        hub.stop()
