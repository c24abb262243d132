"""What a link's state looks like from both ends, on real servers: a refused handshake
says why on both sides; a status shows the link as it is now (not an old error); a
site whose link is down stays listed, offline since when."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, wait_for

from eurec4a_nt.demokit.sites import SiteProcess, free_port, make_sites
from eurec4a_nt.keyring import Keyring
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)


def links(proc: SiteProcess) -> list[dict]:
    return requests.get(f"{proc.url}/api/status", timeout=TIMEOUT).json()["links"]


def test_a_refused_ship_and_the_hub_both_say_why(tmp_path: Path) -> None:
    make_sites(tmp_path, ["OPS"])
    SiteStore.init(tmp_path / "RV-Stranger", "RV-Stranger").trust(Keyring.load(tmp_path / "keyring.yaml"))
    hub = SiteProcess(tmp_path / "OPS").start()
    ship = SiteProcess(tmp_path / "RV-Stranger", args=["--link", hub.url]).start()
    try:
        ours = wait_for(lambda: [x for x in links(ship) if x["error"]], 20, "the ship's refusal")[0]
        assert not ours["connected"] and ours["offline_since"]
        assert ours["error"].startswith(f"refused by {hub.url}: ")
        assert "site RV-Stranger is not in the keyring" in ours["error"] and "403" not in ours["error"]
        theirs = wait_for(lambda: [x for x in links(hub) if x["peer"] == "RV-Stranger"], 10, "the hub's record")[0]
        assert theirs["error"] == "refused here: site RV-Stranger is not in the keyring"
        page = requests.get(hub.url + "/", timeout=TIMEOUT).text
        assert "RV-Stranger" in page and "not in the keyring" in page
    finally:
        ship.stop()
        hub.stop()
    hub_log, ship_log = hub.log_path.read_text(), ship.log_path.read_text()
    assert "WARNING" in hub_log and "refused a link from RV-Stranger" in hub_log
    assert "not in the keyring" in hub_log
    assert "WARNING" in ship_log and f"refused by {hub.url}: site RV-Stranger is not in the keyring" in ship_log


def test_status_is_the_state_now_and_offline_sites_stay_listed(tmp_path: Path) -> None:
    make_sites(tmp_path, ["OPS", "RV-Meteor"])
    port = free_port()
    ship = SiteProcess(tmp_path / "RV-Meteor", args=["--link", f"http://127.0.0.1:{port}"]).start()
    hub = SiteProcess(tmp_path / "OPS", port=port)
    try:
        wait_for(lambda: links(ship)[0]["error"], 20, "a failed dial while the hub is down")
        hub.start()
        link = wait_for(lambda: [x for x in links(ship) if x["connected"]], 30, "the link up")[0]
        assert link["error"] == "" and link["offline_since"] is None  # not the old dial error
        at_hub = wait_for(lambda: [x for x in links(hub) if x["peer"] == "RV-Meteor" and x["connected"]], 10,
                          "the ship at the hub")[0]
        assert at_hub["offline_since"] is None
        ship.stop()
        gone = wait_for(lambda: [x for x in links(hub) if x["peer"] == "RV-Meteor" and not x["connected"]], 20,
                        "the ship offline at the hub")[0]
        assert gone["offline_since"] > 0  # still listed, with since when
        assert "offline since" in requests.get(hub.url + "/", timeout=TIMEOUT).text
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUREC4A_NT_")}
        out = subprocess.run([sys.executable, "-m", "eurec4a_nt", "status", "--server", hub.url],
                             capture_output=True, text=True, timeout=60, env=env, check=False)
        assert out.returncode == 0 and "RV-Meteor" in out.stdout and "offline since" in out.stdout, out
    finally:
        ship.stop()
        hub.stop()
