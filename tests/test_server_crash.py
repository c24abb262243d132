"""``kill -9`` of a site server during concurrent uploads, several times: after each
restart it answers, its store and logs check clean, and its index is rebuilt."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, object_files, start, status

import eurec4a_nt
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.errors import NTError

KILLS = 3
PUBLISHERS = 4


def _publisher(proc: SiteProcess, folder: Path, worker: int, stop: threading.Event,
               done: list[str]) -> None:
    """Publish new files until stopped; note the names the server acknowledged."""
    for i in range(1000):
        if stop.is_set():
            return
        path = folder / f"w{worker}-{i}.bin"
        path.write_bytes(os.urandom(random.randint(200_000, 3_000_000)))
        name = f"raw/{folder.name}/{path.name}"
        try:
            eurec4a_nt.publish(path, name=name, topics=["raw"], server=proc.url, token=proc.token,
                               progress=False)
        except (NTError, OSError, requests.RequestException):
            continue  # the server died under us: expected
        done.append(name)


def _check(proc: SiteProcess, acknowledged: list[str]) -> None:
    assert requests.get(proc.url + "/health", timeout=TIMEOUT).json()["ok"] is True
    fsck = subprocess.run([sys.executable, "-m", "eurec4a_nt", "fsck", "--store", str(proc.store)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "damaged" not in fsck.stdout and "bad commit" not in fsck.stdout
    st = status(proc.url)
    assert st["objects"]["count"] == object_files(proc.store)
    entries = requests.get(proc.url + "/api/sites/RV-Meteor/entries", timeout=TIMEOUT).json()
    assert entries["seq"] == len(entries["entries"])  # one put per commit, none lost or doubled
    assert set(acknowledged) <= {e["name"] for e in entries["entries"]}  # acknowledged = durable


@pytest.mark.timeout(150)
def test_kill_9_during_concurrent_uploads_leaves_a_consistent_store(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    acknowledged: list[str] = []
    rng = random.Random(4)
    try:
        for round_ in range(KILLS):
            stop = threading.Event()
            folder = tmp_path / f"round{round_}"
            folder.mkdir()
            threads = [threading.Thread(target=_publisher, args=(proc, folder, w, stop, acknowledged))
                       for w in range(PUBLISHERS)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 15
            while status(proc.url)["traffic"]["uploaded"] < 2_000_000 and time.monotonic() < deadline:
                time.sleep(0.02)  # uploads are under way
            time.sleep(rng.uniform(0.1, 0.6))
            proc.stop(kill=True)
            stop.set()
            for t in threads:
                t.join(60)
                assert not t.is_alive()
            proc.start()
            assert "index rebuilt" in proc.log_path.read_text().split("(Ctrl-C stops it)")[-2]
            _check(proc, acknowledged)
        assert acknowledged, "no publish finished between the kills"
        path = tmp_path / "after.bin"
        path.write_bytes(os.urandom(100_000))
        eurec4a_nt.publish(path, name="after.bin", server=proc.url, token=proc.token, progress=False)
        _check(proc, [*acknowledged, "after.bin"])
    finally:
        proc.stop()
