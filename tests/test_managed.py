"""Prefetch rules and tokens are managed things: listed and removed from Python, the
command line and the widget; tokens listed and revoked. Real servers, a real link, the
CLI in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, auth, listed, start, wait_for

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote
from eurec4a_nt.demokit.emulator import LinkProfile
from eurec4a_nt.errors import NotFound

SONDES = [f"sondes/sonde-{i}.nc" for i in range(3)]


def nt_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUREC4A_NT_")}
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={**env, "HOME": str(cwd)}, check=False)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    """OPS and a ship over a fast emulated link; the ship published three soundings
    and a quicklook that OPS knows of but does not hold (only the widget's test
    prefetches the soundings)."""
    root = tmp_path_factory.mktemp("managed")
    fast = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)
    with Campaign(root / "sites", "OPS", {"RV-Meteor": Remote(fast)}) as c:
        c.wait_connected()
        ship = c.sites["RV-Meteor"]
        for i, name in enumerate(SONDES):
            nt.publish(sampledata.sonde(root / f"s{i}.nc", seed=i, levels=400), name=name, topics=["sondes"],
                       server=ship.url, token=ship.token, progress=False)
        nt.publish(sampledata.quicklook_png(root / "ql.png", seed=9, target_bytes=5_000), name="ql.png",
                   topics=["quicklook"], server=ship.url, token=ship.token, progress=False)
        wait_for(lambda: len(listed(c.hub.url, "RV-Meteor")) == 4, 30, "the ship's entries at OPS")
        yield c


def _rule_ids(url: str) -> list[int]:
    return [r["id"] for r in requests.get(f"{url}/api/prefetch", timeout=TIMEOUT).json()["rules"]]


@pytest.mark.timeout(120)
def test_python_lists_and_removes_a_rule(campaign: Campaign) -> None:
    ops = campaign.hub
    rule = nt.prefetch(topics=["quicklook"], server=ops.url, token=ops.token, wait=False)
    listed = nt.prefetch_rules(server=ops.url)
    assert [(r["id"], r["topics"], r["entries"]) for r in listed] == [(rule["id"], ["quicklook"], 1)]
    assert 0 <= listed[0]["bytes_missing"] <= listed[0]["bytes"] > 0  # a total that does not grow with blocks
    nt.unprefetch(rule, server=ops.url, token=ops.token)
    assert nt.prefetch_rules(server=ops.url) == [] and _rule_ids(ops.url) == []
    with pytest.raises(NotFound, match="no prefetch rule"):
        nt.unprefetch(rule["id"], server=ops.url, token=ops.token)


@pytest.mark.timeout(120)
def test_cli_lists_and_removes_a_rule(campaign: Campaign, tmp_path: Path) -> None:
    ops = campaign.hub
    target = ["--server", ops.url, "--token", ops.token]
    out = nt_cmd("prefetch", "--topic", "quicklook", "--no-wait", "-q", *target, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rule_id = int(out.stdout.split()[2].rstrip(":"))
    out = nt_cmd("prefetch", "--list", "--server", ops.url, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.split()[:2] == [str(rule_id), "topic=quicklook"], out
    out = nt_cmd("prefetch", "--remove", str(rule_id), "--server", ops.url, cwd=tmp_path)
    assert out.returncode == 2 and "needs a write token: pass --token" in out.stderr  # nothing removed
    assert _rule_ids(ops.url) == [rule_id]
    out = nt_cmd("prefetch", "--remove", str(rule_id), "--list", *target, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"removed prefetch rule {rule_id}", out
    assert _rule_ids(ops.url) == []
    out = nt_cmd("prefetch", "--remove", str(rule_id), *target, cwd=tmp_path)
    assert out.returncode == 2 and f"no prefetch rule '{rule_id}'" in out.stderr
    out = nt_cmd("prefetch", "--list", "--topic", "sondes", *target, cwd=tmp_path)
    assert out.returncode == 2 and "add no rule" in out.stderr and _rule_ids(ops.url) == []


@pytest.mark.timeout(120)
def test_widget_confirms_a_large_rule_and_removes_one(campaign: Campaign) -> None:
    ops = campaign.hub
    widget = nt.browse(server=ops.url, token=ops.token, confirm_above="10KB")
    try:
        wait_for(lambda: widget.total == 4, 30, "the ship's entries in the widget")
        sondes_size = sum(r["size"] for r in widget.rows if "sondes" in r["topics"])
        assert sondes_size > 10_000
        widget._on_message(widget, {"action": "prefetch", "topics": ["sondes"]}, [])
        assert widget.confirm["entries"] == 3 and widget.confirm["size"] == sondes_size
        assert _rule_ids(ops.url) == []  # asked, not added
        widget._on_message(widget, {"action": "cancel"}, [])
        assert widget.confirm == {} and _rule_ids(ops.url) == []
        widget._on_message(widget, {"action": "prefetch", "topics": ["quicklook"]}, [])  # small: no question
        assert widget.confirm == {} and len(widget.rules) == 1
        widget._on_message(widget, {"action": "prefetch", "topics": ["sondes"], "confirmed": True}, [])
        assert [r["what"] for r in widget.rules] == ["topic quicklook", "topic sondes"]
        first = widget.rules[0]["id"]
        widget._on_message(widget, {"action": "unprefetch", "id": first}, [])
        assert widget.message == f"removed prefetch rule {first}"
        assert [r["what"] for r in widget.rules] == ["topic sondes"]
        assert first not in _rule_ids(ops.url)
        widget._on_message(widget, {"action": "unprefetch", "id": widget.rules[0]["id"]}, [])
        assert widget.rules == [] and _rule_ids(ops.url) == []
    finally:
        widget.close()


@pytest.mark.timeout(60)
def test_tokens_listed_and_revoked(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "OPS")
    store = str(proc.store)
    try:
        out = nt_cmd("token", "create", "--name", "lidar-pc", "--store", store, cwd=tmp_path)
        token = out.stdout.strip()
        assert out.returncode == 0 and token.startswith("nt_")
        listed = nt_cmd("token", "list", "--store", store, cwd=tmp_path).stdout.splitlines()
        assert [line.split()[-1] for line in listed] == ["tests", "lidar-pc"]
        assert token not in "\n".join(listed)
        r = requests.post(f"{proc.url}/api/prefetch", json={"topics": ["x"]}, timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
        lidar_id = listed[1].split()[0]
        out = nt_cmd("token", "revoke", lidar_id, "--store", store, cwd=tmp_path)
        assert out.returncode == 0 and out.stdout.startswith(f"revoked write token {lidar_id} 'lidar-pc'")
        r = requests.post(f"{proc.url}/api/prefetch", json={"topics": ["y"]}, timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"})
        assert_error(r, 403, "forbidden")  # refused at once, no restart
        assert requests.post(f"{proc.url}/api/prefetch", json={"topics": ["y"]}, headers=auth(proc),
                             timeout=TIMEOUT).status_code == 201  # the other token still works
        nt_cmd("token", "create", "--name", "pc", "--scope", "read", "--store", store, cwd=tmp_path)
        nt_cmd("token", "create", "--name", "pc", "--store", store, cwd=tmp_path)
        out = nt_cmd("token", "revoke", "pc", "--store", store, cwd=tmp_path)
        assert out.returncode == 2 and "2 tokens are named 'pc': revoke one by its id" in out.stderr
        out = nt_cmd("token", "revoke", "nobody", "--store", store, cwd=tmp_path)
        assert out.returncode == 2 and "no token with id or name 'nobody'" in out.stderr
        assert len(nt_cmd("token", "list", "--store", store, cwd=tmp_path).stdout.splitlines()) == 3
    finally:
        proc.stop()
