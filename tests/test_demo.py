"""``eurec4a-nt demo`` in a real subprocess: the README's examples open while it runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import requests

import eurec4a_nt as nt
from eurec4a_nt.demo import EXAMPLE_SONDE, EXAMPLE_SONDES, SHIPS
from eurec4a_nt.errors import Pending

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]


def patiently(read: Callable[[], T], timeout: float = 90) -> T:
    """``read()``, again while the demo's emulated link is down (the read is Pending)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except Pending:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_readme_example_opens_in_the_demo(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r'ds = cat\["RV-Meteor"\]\["([^"]+)"\]\.to_dask\(\)', readme)
    assert example and example.group(1) == EXAMPLE_SONDE
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUREC4A_NT_")}
    proc = subprocess.Popen([sys.executable, "-m", "eurec4a_nt", "demo", "--duration", "150", "--dir",
                             str(tmp_path), "--port", "0", "--speed", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        hub = ""
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, \
                "the demo's example never reached OPS:\n" + "".join(lines)[-3000:]
            if not hub:
                said = re.search(r'open_catalog\(server="([^"]+)"\)', "".join(lines))
                hub = said.group(1) if said else ""
                time.sleep(0.2)
                continue
            try:
                names = [e["name"] for e in requests.get(f"{hub}/api/sites/RV-Meteor/entries", timeout=5)
                         .json()["entries"]]
            except (requests.RequestException, ValueError, KeyError):
                names = []
            if set(EXAMPLE_SONDES) <= set(names):
                break
            time.sleep(1)
        cat = nt.open_catalog(server=hub)
        ds = patiently(lambda: cat["RV-Meteor"][EXAMPLE_SONDE].to_dask().load())
        assert ds.sizes and "RV-Meteor" in str(ds.attrs) + str(dict(ds.variables))
        assert ds.attrs["launch_time"] == "2020-02-02T10:45:00"  # the time its name says
        day = re.search(r'day = cat\["RV-Meteor"\]\.sondes\(date="([^"]+)"\)', readme)
        assert day is not None
        both = patiently(lambda: cat["RV-Meteor"].sondes(date=day.group(1)).to_dask().load())  # series
        assert sum(both.sizes.values()) > sum(ds.sizes.values())
        deadline = time.monotonic() + 60  # the first flight plan reaches both ships
        while not all(re.search(f"{ship} +has OPS/planning/", "".join(lines)) for ship in SHIPS):
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)
    out = "".join(lines)
    assert f'cat = nt.open_catalog(server="{hub}")' in out
    assert f'ds = cat["RV-Meteor"]["{EXAMPLE_SONDE}"].to_dask()' in out
