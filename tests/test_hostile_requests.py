"""Hostile requests against a real server that once got past the boundary: query numbers
out of range, compressed and undecodable bodies, floods of commits, absurd purge rules.
Each is answered 4xx with a JSON error, leaves no traceback and at most a few log lines,
changes nothing, and the server stays up with a clean fsck."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
from server_kit import TIMEOUT, assert_consistent, start

import eurec4a_nt
from eurec4a_nt.demokit.sites import SiteProcess


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """RV-Meteor with one file entry, in a campaign with BCO; checked at the end."""
    root = tmp_path_factory.mktemp("hostile-requests")
    proc = start(root / "sites", "RV-Meteor", sites=["RV-Meteor", "BCO"])
    data = root / "sonde.nc"
    data.write_bytes(os.urandom(20_000))
    eurec4a_nt.publish(data, name="sondes/sonde.nc", server=proc.url, token=proc.token, progress=False)
    try:
        yield proc
        assert_consistent(proc)
        log = proc.log_path.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        proc.stop()


def assert_refused(r: requests.Response, *codes: int) -> None:
    assert r.status_code in codes, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert set(r.json()) >= {"error", "message"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("query", [
    {"limit": "1e300"}, {"limit": "1" * 50}, {"limit": "0"}, {"limit": "10001"}, {"limit": "nan"},
    {"after": "1e300"}, {"after": "9" * 30}, {"after": "-1"}, {"after": "1.5"}, {"after": "\u0663"},
])
def test_log_reads_take_whole_numbers_in_range(site: SiteProcess, query: dict[str, str]) -> None:
    assert_refused(requests.get(site.url + "/logs/RV-Meteor", params=query, timeout=TIMEOUT), 400)


@pytest.mark.timeout(30)
def test_log_reads_in_range_work(site: SiteProcess) -> None:
    r = requests.get(site.url + "/logs/RV-Meteor", params={"after": "0", "limit": "10000"}, timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.content.splitlines()) == 1
    r = requests.get(site.url + "/logs/RV-Meteor", params={"after": str(1 << 53)}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == b""
