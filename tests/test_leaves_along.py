"""A first read over a link takes one round trip: a reader at the hub reads a few bytes
of a netCDF entry held only at the ship, over the emulated satellite link; the hub asks
for the file record with the span read, and the ship sends the leaves holding it right
after the record, unasked, which the hub takes as if it had asked for them (checked
against the tree roots in the record)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, publish_spectra

from eurec4a_nt import hashtree
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile

DELAY = 1.0  #: seconds one way: a round trip is 2 s, well above what a busy machine adds


@pytest.mark.timeout(180)
def test_a_first_read_at_the_hub_takes_one_round_trip(tmp_path: Path) -> None:
    profile = LinkProfile(down=1_000_000, up=250_000, delay=DELAY)
    with Campaign(tmp_path / "c", "OPS", {"RV-Meteor": Remote(profile, link={})}) as c:
        c.wait_connected()
        ship, hub = c.sites["RV-Meteor"], c.hub
        path = tmp_path / "spectra.nc"
        record = publish_spectra(ship, path, "raw/spectra.nc", 4, topics=["raw"])
        wait_until(lambda: requests.get(f"{hub.url}/api/sites/RV-Meteor/entries/raw/spectra.nc",
                                        timeout=TIMEOUT).ok, 30, "the entry at the hub")
        block = max(record.blocks, key=lambda b: b.length)
        start = block.offset + block.length // 2
        sent_before = c.links["RV-Meteor"].stats["sent_up"]
        began = time.monotonic()
        r = requests.get(f"{hub.url}/data/RV-Meteor/raw/spectra.nc",
                         headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT)
        took = time.monotonic() - began
        assert r.status_code == 206 and r.content == path.read_bytes()[start:start + 1000]
        moved = c.links["RV-Meteor"].stats["sent_up"] - sent_before
        assert moved < 2 * hashtree.LEAF + 8000, moved  # the record and a leaf or two, not a block
        assert took < 1.6 * 2 * DELAY, took  # the record and its leaves in one round trip (2.1 s), not two
        log = hub.log_path.read_text()
        assert "not asked for" not in log and "Traceback" not in log
