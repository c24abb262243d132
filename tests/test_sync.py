"""Sync between real site servers over emulated links: topics, relays, lazy reads,
want-lists, outages, budgets, forged commits."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest
import requests
import xarray as xr
from server_kit import listed

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile, Outages
from eurec4a_nt.errors import Pending
from eurec4a_nt.fsck import fsck
from eurec4a_nt.keyring import SiteKey
from eurec4a_nt.log import Change, make_commit
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.sync.budget import PIECE_ROOM

FAST = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)


def held(site, path: str) -> bool:
    """Whether a site server holds every object of entry ``SITE/NAME``."""
    owner, name = path.split("/", 1)
    answer = requests.get(f"{site.url}/api/sites/{owner}/entries", params={"held": "1"}, timeout=10)
    if answer.status_code != 200:
        return False
    return any(e["name"] == name and e["held"] == e["objects"] for e in answer.json()["entries"])


def publish(site, path: Path, name: str, topics: list[str]) -> nt.Entry:
    return nt.publish(path, name=name, topics=topics, server=site.url, token=site.token, progress=False)


@pytest.fixture
def campaign(tmp_path: Path):
    c = Campaign(tmp_path, "OPS", {
        "RV-Meteor": Remote(FAST, link={"push": ["quicklook", "sondes"], "prefetch": ["planning"]}),
        "RV-Merian": Remote(FAST, link={"prefetch": ["quicklook", "planning"]}),
    })
    with c:
        c.wait_connected()
        yield c


@pytest.mark.timeout(90)
def test_quicklook_reaches_other_ship_via_hub_and_raw_stays(campaign: Campaign, tmp_path: Path) -> None:
    meteor, merian, hub = campaign.sites["RV-Meteor"], campaign.sites["RV-Merian"], campaign.hub
    ql = sampledata.quicklook_png(tmp_path / "ql.png", seed=1)
    raw = sampledata.raw_file(tmp_path / "raw.bin", size=3_000_000, seed=2)
    publish(meteor, raw, "raw/radar.bin", ["raw"])
    publish(meteor, ql, "quicklooks/ql.png", ["quicklook"])

    wait_until(lambda: held(merian, "RV-Meteor/quicklooks/ql.png"), 30, "quicklook at RV-Merian")
    got = requests.get(f"{merian.url}/data/RV-Meteor/quicklooks/ql.png", timeout=10).content
    assert got == ql.read_bytes()
    assert held(hub, "RV-Meteor/quicklooks/ql.png")
    # the catalog knows the raw entry everywhere, but its bytes never left the ship
    for site in (hub, merian):
        assert not held(site, "RV-Meteor/raw/radar.bin")
        assert site.status()["objects"]["bytes"] < 1_000_000
    assert campaign.links["RV-Meteor"].stats["sent_up"] < 1_000_000


@pytest.mark.timeout(90)
def test_a_hub_with_ships_linked_stops_cleanly_on_sigterm_and_they_link_again(campaign: Campaign) -> None:
    hub = campaign.hub
    hub.stop()  # SIGTERM; SIGKILL if still running after 10 s
    assert hub.proc is not None and hub.proc.returncode == 0, "the hub had to be killed: its links held it"
    hub.start()
    campaign.wait_connected()
    assert "did not stop cleanly" not in hub.log_path.read_text()


@pytest.mark.timeout(90)
def test_lazy_read_moves_only_blocks_read_and_once(campaign: Campaign, tmp_path: Path) -> None:
    meteor, hub = campaign.sites["RV-Meteor"], campaign.hub
    raw = sampledata.raw_file(tmp_path / "raw.bin", size=12_000_000, seed=3)
    publish(meteor, raw, "raw/radar.bin", ["raw"])
    link = campaign.links["RV-Meteor"]
    wait_until(lambda: requests.head(f"{hub.url}/data/RV-Meteor/raw/radar.bin", timeout=5).ok, 20, "entry known")
    link.reset_counters()
    url = f"{hub.url}/data/RV-Meteor/raw/radar.bin"
    first = requests.get(url, headers={"Range": "bytes=5000000-5000099"}, timeout=30)
    assert first.status_code == 206
    assert first.content == raw.read_bytes()[5_000_000:5_000_100]
    moved = link.stats["sent_up"]
    assert 100 < moved < 4_500_000 + 50_000  # one block (at most 4 MiB) and its record, not 12 MB
    # a second reader of the same bytes is served by the hub alone
    second = requests.get(url, headers={"Range": "bytes=5000000-5000099"}, timeout=30)
    assert second.content == first.content
    assert link.stats["sent_up"] == moved


@pytest.mark.timeout(90)
def test_lazy_zarr_open_needs_only_the_manifest(campaign: Campaign, tmp_path: Path) -> None:
    from eurec4a_nt.manifests import Manifest

    meteor, hub = campaign.sites["RV-Meteor"], campaign.hub
    ds = sampledata.timeseries(seed=2, hours=48).chunk(time=36)
    entry = nt.publish(ds, name="raw/series.zarr", topics=["raw"], server=meteor.url, token=meteor.token,
                       progress=False)
    url = f"{hub.url}/data/RV-Meteor/raw/series.zarr"
    wait_until(lambda: requests.head(f"{url}/zarr.json", timeout=5).ok, 20, "root metadata readable at the hub")
    manifest = Manifest.from_bytes(SiteStore(meteor.store).objects.get(entry.root))
    assert {"zarr.json", "time/c/0", "height/c/0"} <= set(manifest.inline)
    chunks = {ref.id for key, ref in manifest.items.items() if "/c/" in key}
    assert chunks

    def at_hub(oid: str) -> bool:
        return (hub.store / "objects" / oid[:2] / oid).exists()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated: no warning over HTTP
        opened = xr.open_zarr(url)  # metadata and coordinates, all in the manifest
    assert (opened["time"].values == ds["time"].values).all()
    assert not any(at_hub(o) for o in chunks)  # data stays on board until read


@pytest.mark.timeout(120)
def test_want_list_while_ship_is_offline_is_served_after_reconnect(campaign: Campaign, tmp_path: Path) -> None:
    meteor, hub = campaign.sites["RV-Meteor"], campaign.hub
    raw = sampledata.raw_file(tmp_path / "raw.bin", size=2_000_000, seed=4)
    publish(meteor, raw, "raw/lidar.bin", ["raw"])
    url = f"{hub.url}/data/RV-Meteor/raw/lidar.bin"
    wait_until(lambda: requests.head(url, timeout=5).ok, 20, "commit at hub")
    campaign.links["RV-Meteor"].down()
    wait_until(lambda: not campaign.connected("RV-Meteor"), 20, "ship offline")

    answer = requests.get(url, timeout=30)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert body["error"] == "pending" and body["held_at"] == "RV-Meteor"
    assert "pending" in body["message"] and "RV-Meteor" in body["message"]
    cat = nt.open_catalog(server=hub.url)
    with pytest.raises(Pending, match="RV-Meteor"):
        cat["RV-Meteor"]["raw/lidar.bin"].read()

    campaign.links["RV-Meteor"].up()
    wait_until(lambda: held(hub, "RV-Meteor/raw/lidar.bin"), 40, "wanted data after reconnect")
    assert requests.get(url, timeout=30).content == raw.read_bytes()


@pytest.mark.timeout(90)
def test_a_reconnection_after_an_outage_opens_on_a_resume_ticket(campaign: Campaign) -> None:
    """The hub gave each ship a ticket on its first connection; after an outage the
    ship dials on it (one round trip), the hub takes it back and gives a new one."""
    hub = campaign.hub
    before = requests.get(f"{hub.url}/api/status", timeout=10).json()["tickets"]
    assert before["held"] == 2 and before["redeemed"] == 0
    for _ in range(2):
        campaign.links["RV-Meteor"].down()
        wait_until(lambda: not campaign.connected("RV-Meteor"), 20, "ship offline")
        campaign.links["RV-Meteor"].up()
        campaign.wait_connected()
    after = requests.get(f"{hub.url}/api/status", timeout=10).json()["tickets"]
    assert after["redeemed"] == 2 and after["refused"] == 0 and after["held"] == 2
    assert "refused a resume ticket" not in hub.log_path.read_text()


@pytest.mark.timeout(150)
def test_outages_lose_nothing_and_resend_nothing_received_whole(tmp_path: Path) -> None:
    link = LinkProfile(down=1_000_000, up=1_000_000, delay=0.02)
    remotes = {"RV-Meteor": Remote(link, Outages(period=1.5, duration=0.4), {"push": ["sondes"]})}
    data = tmp_path / "data"
    data.mkdir()
    files = [sampledata.raw_file(data / f"s{i}.nc", size=400_000 + i * 1000, seed=10 + i) for i in range(15)]
    total = sum(p.stat().st_size for p in files)
    with Campaign(tmp_path / "c", "OPS", remotes) as c:
        ship = c.sites["RV-Meteor"]
        nt.publish(files, name="sondes", topics=["sondes"], server=ship.url, token=ship.token, progress=False)
        for p in files:
            wait_until(lambda p=p: held(c.hub, f"RV-Meteor/sondes/{p.name}"), 90, f"{p.name} at hub")
        stats = c.links["RV-Meteor"].stats
        for p in files:
            url = f"{c.hub.url}/data/RV-Meteor/sondes/{p.name}"
            assert requests.get(url, timeout=10).content == p.read_bytes()
    assert stats["resets"] >= 2  # the link really dropped during the transfer
    # what was lost in flight at each drop is bounded by the window; nothing whole was sent twice
    window = int(link.up * link.delay) + (64 << 10) + (16 << 10)
    assert stats["sent_up"] <= total * 1.03 + stats["resets"] * (window + (64 << 10))


@pytest.mark.timeout(120)
def test_concurrent_publishing_everywhere_converges(campaign: Campaign, tmp_path: Path) -> None:
    sites = campaign.sites
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(4):
                p = sampledata.quicklook_png(tmp_path / f"{name}-{i}.png", seed=hash(name) % 1000 + i,
                                             target_bytes=20_000)
                publish(sites[name], p, f"quicklooks/{i}.png", ["quicklook"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in sites]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

    def heads(site) -> dict:
        return {k: v["seq"] for k, v in site.status()["sites"].items()}

    wait_until(lambda: all(heads(s) == {"OPS": 4, "RV-Meteor": 4, "RV-Merian": 4} for s in sites.values()),
               40, "every site knows every commit")
    for site in sites.values():
        assert SiteStore(site.store).log(site.site).seq == 4
        assert SiteStore(site.store).log("RV-Meteor").verify(SiteStore(site.store).keyring) == []


@pytest.mark.timeout(120)
def test_forged_commit_injected_at_hub_is_rejected_at_ships(campaign: Campaign, tmp_path: Path) -> None:
    meteor, merian, hub = campaign.sites["RV-Meteor"], campaign.sites["RV-Merian"], campaign.hub
    publish(meteor, sampledata.quicklook_png(tmp_path / "a.png", seed=5, target_bytes=10_000),
            "quicklooks/a.png", ["quicklook"])
    wait_until(lambda: held(merian, "RV-Meteor/quicklooks/a.png"), 30, "first quicklook")
    # A compromised relay appends a commit "from RV-Meteor" signed with another key.
    hub.stop()
    log = hub.store / "logs" / "RV-Meteor.jsonl"
    previous = SiteStore(hub.store).log("RV-Meteor").commits_after(0)[-1]
    forged_entry = next(iter(SiteStore(hub.store).state("RV-Meteor").entries.values()))
    forged = make_commit(SiteKey.generate(), "RV-Meteor", previous.seq + 1, previous.id,
                         [Change("put", "quicklooks/evil.png", forged_entry.__class__(
                             **{**forged_entry.__dict__, "name": "quicklooks/evil.png"}))])
    with open(log, "ab") as f:
        f.write(forged.raw + b"\n")
    hub.start()
    # a genuine commit of another site still flows after the forged one
    publish(hub, sampledata.quicklook_png(tmp_path / "b.png", seed=6, target_bytes=10_000),
            "quicklooks/b.png", ["quicklook"])
    wait_until(lambda: held(merian, "OPS/quicklooks/b.png"), 40, "genuine commit after the forged one")
    assert "quicklooks/evil.png" not in {e["name"] for e in listed(merian.url, "RV-Meteor")}
    assert "rejected" in (merian.store.parent / "RV-Merian.log").read_text()


@pytest.mark.timeout(120)
def test_budget_spent_stops_bulk_but_not_quicklooks(tmp_path: Path) -> None:
    remotes = {"RV-Meteor": Remote(FAST, link={"push": ["quicklook", "raw"], "budget": "300KB",
                                               "essential": ["quicklook"]})}
    with Campaign(tmp_path / "c", "OPS", remotes) as c:
        c.wait_connected()
        ship = c.sites["RV-Meteor"]
        raw = sampledata.raw_file(tmp_path / "raw.bin", size=3_000_000, seed=7)
        publish(ship, raw, "raw/big.bin", ["raw"])
        wait_until(lambda: ship.status()["links"][0].get("bulk") is False, 20, "budget spent")
        spent = ship.status()["links"][0]
        assert 300_000 - PIECE_ROOM <= spent["sent_today"] + spent["received_today"] <= 300_000
        ql = sampledata.quicklook_png(tmp_path / "ql.png", seed=8, target_bytes=100_000)
        publish(ship, ql, "quicklooks/late.png", ["quicklook"])
        wait_until(lambda: held(c.hub, "RV-Meteor/quicklooks/late.png"), 30, "quicklook despite budget")
        sent = c.links["RV-Meteor"].stats["sent_up"]
        assert not held(c.hub, "RV-Meteor/raw/big.bin")
        assert sent < 1_500_000  # bulk stopped soon after the budget was spent
        link = ship.status()["links"][0]
        bulk_counted = link["sent_today"] + link["received_today"] - 100_000 * 1.1  # less the quicklook
        assert bulk_counted <= 300_000 + PIECE_ROOM, link  # the budget held to within one piece


@pytest.mark.timeout(120)
def test_changed_block_travels_as_a_delta(campaign: Campaign, tmp_path: Path) -> None:
    meteor, hub = campaign.sites["RV-Meteor"], campaign.hub
    big = sampledata.raw_file(tmp_path / "v1.nc", size=8 << 20, seed=9)
    publish(meteor, big, "sondes/series.nc", ["sondes"])
    wait_until(lambda: held(hub, "RV-Meteor/sondes/series.nc"), 40, "first version at hub")
    data = big.read_bytes()
    changed = tmp_path / "v2.nc"
    changed.write_bytes(data[:4096] + b"x" * 100 + data[4096:])
    link = campaign.links["RV-Meteor"]
    link.reset_counters()
    second = publish(meteor, changed, "sondes/series.nc", ["sondes"])
    # watch without reading: a read now would fetch the new block whole, before the delta
    wait_until(lambda: held(hub, "RV-Meteor/sondes/series.nc") and requests.head(
        f"{hub.url}/data/RV-Meteor/sondes/series.nc", timeout=10).headers["ETag"] == f'"{second.root}"',
        40, "second version complete at hub")
    assert link.stats["sent_up"] < 30_000  # rsync needs ~38 KB for this; a whole block would be ~1 MB
    got = requests.get(f"{hub.url}/data/RV-Meteor/sondes/series.nc", headers={"Range": "bytes=4096-4195"},
                       timeout=20)
    assert got.content == b"x" * 100


@pytest.mark.timeout(120)
def test_log_sync_costs_bytes_per_change_not_per_catalog(campaign: Campaign, tmp_path: Path) -> None:
    meteor, hub = campaign.sites["RV-Meteor"], campaign.hub
    files = [sampledata.quicklook_png(tmp_path / f"many-{i}.png", seed=i, target_bytes=5_000)
             for i in range(300)]
    nt.publish(files, name="maps", topics=["maps"], server=meteor.url, token=meteor.token, progress=False)
    wait_until(lambda: hub.status()["sites"].get("RV-Meteor", {}).get("entries") == 300, 30, "catalog at hub")
    link = campaign.links["RV-Meteor"]
    link.reset_counters()
    publish(meteor, files[0], "maps/one-more.png", ["maps"])
    wait_until(lambda: hub.status()["sites"]["RV-Meteor"]["entries"] == 301, 30, "new entry at hub")
    stats = link.stats
    assert stats["sent_up"] + stats["sent_down"] < 10_000


@pytest.mark.timeout(150)
def test_hub_killed_mid_sync_continues_where_it_was(tmp_path: Path) -> None:
    link = LinkProfile(down=1_000_000, up=500_000, delay=0.02)
    data = tmp_path / "data"
    data.mkdir()
    files = [sampledata.raw_file(data / f"s{i}.nc", size=500_000, seed=20 + i) for i in range(10)]
    total = sum(p.stat().st_size for p in files)
    with Campaign(tmp_path / "c", "OPS", {"RV-Meteor": Remote(link, None, {"push": ["sondes"]})}) as c:
        ship = c.sites["RV-Meteor"]
        nt.publish(files, name="sondes", topics=["sondes"], server=ship.url, token=ship.token, progress=False)
        wait_until(lambda: sum(held(c.hub, f"RV-Meteor/sondes/{p.name}") for p in files) >= 3, 60, "progress")
        c.hub.stop(kill=True)
        c.hub.start()
        for p in files:
            wait_until(lambda p=p: held(c.hub, f"RV-Meteor/sondes/{p.name}"), 60, f"{p.name} after restart")
        sent = c.links["RV-Meteor"].stats["sent_up"]
    report = fsck(SiteStore(tmp_path / "c" / "OPS"))
    assert not report.bad_objects and not report.bad_commits
    assert sent < total * 1.25  # only what was in flight at the kill is sent again
