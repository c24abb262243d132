"""Prefetch through a hub that cannot fetch the data is refused with the reason: the
asking site shows it (status, /api/status, the page, the prefetch rule listing), both
sides log it once, and when the hub gains the link the refusal clears and the data
flows. Real servers on loopback; the message itself and the rules as plain values."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

import eurec4a_nt as nt
from eurec4a_nt.client import SiteClient
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.errors import BadInput
from eurec4a_nt.jupyter.rows import ServerView
from eurec4a_nt.schema import link_message
from eurec4a_nt.sync.core import Peer
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.refusals import Refusals, Told, why_refused
from tests.server_kit import wait_for

NO_LINK = "OPS has no link to RV-Merian"


def test_why_a_hub_refuses() -> None:
    assert why_refused("OPS", "X", known=False, linked=False, bulk_held=False) == "X is not in OPS's keyring"
    assert why_refused("OPS", "X", known=True, linked=False, bulk_held=True) == "OPS has no link to X"
    assert "budget" in (why_refused("OPS", "X", known=True, linked=True, bulk_held=True) or "")
    assert why_refused("OPS", "X", known=True, linked=True, bulk_held=False) is None


def test_a_peer_is_told_once_per_change_and_only_if_it_takes_refusals() -> None:
    told = Told(takes=True)
    assert [s.body for s in told.say("X", "no link")] == [{"site": "X", "reason": "no link"}]
    assert told.say("X", "no link") == []  # a retry tells nothing new
    assert told.refused() == ["X"]
    assert [s.body for s in told.say("X", None)] == [{"site": "X", "reason": None}]
    assert told.refused() == [] and told.say("X", None) == []
    assert Told(takes=False).say("X", "no link") == []  # an older peer refuses unknown messages


def test_the_refused_message_is_parsed_strictly() -> None:
    core = Peer("OPS", None, {"heads": {}}, Partials())
    body = link_message('{"type":"refused","site":"RV-Merian","reason":"OPS has no link to RV-Merian"}')
    [action] = core.receive(body)
    assert (action.site, action.reason) == ("RV-Merian", NO_LINK)
    assert core.receive(link_message('{"type":"refused","site":"RV-Merian","reason":null}'))[0].reason is None
    for junk in ('{"type":"refused","site":"../x","reason":"r"}', '{"type":"refused","site":"X"}',
                 '{"type":"refused","site":"X","reason":"a\\nb"}', '{"type":"refused","site":"X","reason":""}',
                 '{"type":"refused","site":"X","reason":"' + "r" * 301 + '"}',
                 '{"type":"refused","site":"X","reason":"r","extra":1}', '{"type":"refused","site":"X","reason":7}'):
        with pytest.raises(BadInput):
            link_message(junk)


def test_refusals_are_bounded_per_peer(caplog: pytest.LogCaptureFixture) -> None:
    table, told = Refusals(by_peer=False), Told(takes=True)
    with caplog.at_level(logging.WARNING):
        for i in range(300):
            table.note("OPS", f"S{i}", "no link")
            told.say(f"S{i}", "no link")
    assert len(table.of("OPS")) == 256 and len(told.refused()) == 256
    assert len(caplog.records) == 257  # one line per refusal kept, one for all that were dropped
    table.note("OPS", "S0", None)
    assert len(table.of("OPS")) == 255 and len(table.all()) == 255


def _links(path: Path, *urls: str) -> str:
    path.write_text(yaml.safe_dump({"links": [{"url": u} for u in urls]}))
    return str(path)


def _refusals(proc: SiteProcess) -> list[dict]:
    return [r for link in proc.status()["links"] for r in link.get("refused", [])]


@pytest.mark.timeout(240)
def test_a_hub_without_a_link_to_the_origin_refuses_with_the_reason_until_it_gains_one(tmp_path: Path) -> None:
    """BCO prefetches RV-Merian's soundings through OPS, which knows RV-Merian's log (it
    came through RV-Meteor) but has no link to it: BCO is told why, and shows it. When
    RV-Merian dials OPS, the refusal clears and the sounding arrives."""
    root = tmp_path / "sites"
    make_sites(root, ["OPS", "RV-Meteor", "RV-Merian", "BCO"])
    env = {"EUREC4A_NT_LOG": "info"}
    procs: list[SiteProcess] = []
    try:
        ops = SiteProcess(root / "OPS", env=env).start()
        procs.append(ops)
        meteor = SiteProcess(root / "RV-Meteor", env=env,
                             args=["--links", _links(tmp_path / "meteor.yaml", ops.url)]).start()
        procs.append(meteor)
        merian_links = tmp_path / "merian.yaml"
        merian = SiteProcess(root / "RV-Merian", env=env, args=["--links", _links(merian_links, meteor.url)]).start()
        procs.append(merian)
        bco = SiteProcess(root / "BCO", env=env, args=["--links", _links(tmp_path / "bco.yaml", ops.url)]).start()
        procs.append(bco)
        sonde = sampledata.sonde(tmp_path / "m1.nc", seed=7, levels=500)
        nt.publish(sonde, name="sondes/m1.nc", topics=["sondes"], server=merian.url, token=merian.token,
                   progress=False)
        wait_for(lambda: "RV-Merian" in requests.get(f"{bco.url}/api/sites", timeout=10).json()["sites"],
                 60, "RV-Merian's log at BCO (through RV-Meteor and OPS)")
        rule = nt.prefetch(["sondes"], wait=False, server=bco.url, token=bco.token)

        wait_for(lambda: _refusals(bco), 60, "the refusal at BCO")
        [refusal] = _refusals(bco)
        assert (refusal["site"], refusal["reason"]) == ("RV-Merian", NO_LINK)
        hub_rows = [r for link in ops.status()["links"] for r in link.get("refusing", [])]
        assert [(r["site"], r["reason"]) for r in hub_rows] == [("RV-Merian", NO_LINK)]
        [listed] = [r for r in nt.prefetch_rules(server=bco.url, token=bco.token) if r["id"] == rule["id"]]
        assert listed["refused"] == [f"refused by OPS: {NO_LINK}"]
        cli = subprocess.run([sys.executable, "-m", "eurec4a_nt", "status", "--server", bco.url],
                             capture_output=True, text=True, timeout=60, check=True)
        assert f"refused by OPS: RV-Merian: {NO_LINK}" in cli.stdout, cli.stdout
        listing = subprocess.run([sys.executable, "-m", "eurec4a_nt", "prefetch", "--list", "--server", bco.url,
                                  "--token", bco.token], capture_output=True, text=True, timeout=60, check=True)
        assert f"refused by OPS: {NO_LINK}" in listing.stdout, listing.stdout
        assert NO_LINK in requests.get(bco.url + "/", timeout=10).text
        widget_rules = ServerView(SiteClient(bco.url, token=bco.token)).snapshot().rules
        assert [r["refused"] for r in widget_rules] == [f"refused by OPS: {NO_LINK}"]

        # BCO asks again (a second rule): nothing new is logged on either side
        nt.prefetch(["sondes"], sites=["RV-Merian"], wait=False, server=bco.url, token=bco.token)
        wait_for(lambda: len(nt.prefetch_rules(server=bco.url, token=bco.token)) == 2, 10, "the second rule")

        merian.stop()  # RV-Merian now dials OPS as well: the hub has a link to it
        _links(merian_links, meteor.url, ops.url)
        merian.start()
        wait_for(lambda: any(r["entries"] and r["complete"] == r["entries"]
                             for r in nt.prefetch_rules(server=bco.url, token=bco.token)), 90,
                 "the sounding at BCO")
        assert requests.get(f"{bco.url}/data/RV-Merian/sondes/m1.nc", timeout=30).content == sonde.read_bytes()
        wait_for(lambda: not _refusals(bco), 30, "the refusal cleared at BCO")
        assert all(not r["refused"] for r in nt.prefetch_rules(server=bco.url, token=bco.token))
        assert not [r for link in ops.status()["links"] for r in link.get("refusing", [])]
        assert bco.log_path.read_text().count(f"refused by OPS: {NO_LINK}") == 1
        assert ops.log_path.read_text().count(f"refusing BCO's prefetch of RV-Merian's data: {NO_LINK}") == 1
    finally:
        for proc in reversed(procs):
            proc.stop()
