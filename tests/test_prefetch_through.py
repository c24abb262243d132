"""Prefetch reaches through the hub: a ship's rule for another ship's topic that is not
pushed makes the hub fetch it once, on behalf of every site asking, at the priority
asked. Real servers over emulated links."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile

FAST = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)


def held(site, path: str) -> bool:
    owner, name = path.split("/", 1)
    answer = requests.get(f"{site.url}/api/sites/{owner}/entries", params={"held": "1"}, timeout=10)
    return answer.status_code == 200 and any(e["name"] == name and e["held"] == e["objects"]
                                             for e in answer.json()["entries"])


@pytest.mark.timeout(180)
def test_a_ships_prefetch_of_another_ships_topic_reaches_through_the_hub(tmp_path: Path) -> None:
    remotes = {"RV-Meteor": Remote(FAST, link={"push": ["quicklook"]}),     # sondes stay on board
               "RV-Merian": Remote(FAST, link={"prefetch": ["sondes"]}),
               "BCO": Remote(FAST, link={"prefetch": ["sondes"]})}
    with Campaign(tmp_path / "c", "OPS", remotes) as c:
        c.wait_connected()
        meteor = c.sites["RV-Meteor"]
        sonde = sampledata.sonde(tmp_path / "s.nc", seed=3, levels=3000)
        nt.publish(sonde, name="sondes/s1.nc", topics=["sondes"], server=meteor.url, token=meteor.token,
                   progress=False)
        for name in ("RV-Merian", "BCO"):
            wait_until(lambda name=name: held(c.sites[name], "RV-Meteor/sondes/s1.nc"), 60,
                       f"the sounding at {name}")
        assert held(c.hub, "RV-Meteor/sondes/s1.nc")  # the hub fetched it on their behalf
        for name in ("RV-Merian", "BCO"):
            data = requests.get(f"{c.sites[name].url}/data/RV-Meteor/sondes/s1.nc", timeout=30).content
            assert data == sonde.read_bytes()
        size = sonde.stat().st_size
        sent = c.links["RV-Meteor"].stats["sent_up"]
        assert size * 0.5 < sent < size * 1.5, (sent, size)  # once over the ship's link, not twice


@pytest.mark.timeout(180)
def test_what_the_hub_fetches_on_behalf_keeps_to_the_far_ships_budget(tmp_path: Path) -> None:
    remotes = {"RV-Meteor": Remote(FAST, link={"push": ["quicklook"], "budget": "50KB",
                                               "essential": ["quicklook"]}),
               "RV-Merian": Remote(FAST, link={"prefetch": ["sondes", "quicklook"]})}
    with Campaign(tmp_path / "c", "OPS", remotes) as c:
        c.wait_connected()
        meteor = c.sites["RV-Meteor"]
        big = sampledata.raw_file(tmp_path / "s.nc", size=400_000, seed=4)
        nt.publish(big, name="sondes/s1.nc", topics=["sondes"], server=meteor.url, token=meteor.token,
                   progress=False)
        ql = sampledata.quicklook_png(tmp_path / "ql.png", seed=5, target_bytes=20_000)
        nt.publish(ql, name="quicklooks/q.png", topics=["quicklook"], server=meteor.url, token=meteor.token,
                   progress=False)
        # the essential quicklook flows; the sounding (bulk) waits for the far ship's next budget day
        wait_until(lambda: held(c.sites["RV-Merian"], "RV-Meteor/quicklooks/q.png"), 60, "the quicklook")
        assert not held(c.hub, "RV-Meteor/sondes/s1.nc")
        assert not held(c.sites["RV-Merian"], "RV-Meteor/sondes/s1.nc")
        # the far ship is told why, and shows it (until the budget frees)
        refused = wait_until(lambda: [r for link in c.sites["RV-Merian"].status()["links"]
                                      for r in link.get("refused", [])], 30, "the refusal at RV-Merian")
        assert [r["site"] for r in refused] == ["RV-Meteor"]
        assert "daily budget of the link between OPS and RV-Meteor is spent" in refused[0]["reason"]
        link = meteor.status()["links"][0]
        assert link["sent_today"] + link["received_today"] < 50_000 + 100_000  # budget, quicklook, messages
