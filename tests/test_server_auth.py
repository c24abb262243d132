"""Tokens: writes need a write token (401 without, 403 with a wrong one, nothing changed);
reads are open unless the server runs with ``--read-token``; ``/health`` stays open."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, object_files, start, status

import eurec4a_nt
from eurec4a_nt.chunking import Block, FileRecord
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.errors import Forbidden, Unauthorized
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.server.auth import Tokens

DATA = b"a quicklook" * 100
OID = hashlib.sha256(DATA).hexdigest()
RECORD = FileRecord(len(DATA), (Block(ObjectId.parse(OID), 0, len(DATA)),)).to_bytes()
RECORD_ID = hashlib.sha256(RECORD).hexdigest()
ENTRY = {"name": "x.bin", "kind": "file", "root": RECORD_ID, "size": len(DATA), "format": "binary"}

WRITES = [
    ("PUT", f"/objects/{OID}", DATA),
    ("POST", "/objects", f"{OID} {len(DATA)}\n".encode() + DATA),
    ("POST", "/api/commit", {"changes": [{"op": "put", "name": "x.bin", "entry": ENTRY}]}),
    ("POST", "/api/prefetch", {"topics": ["quicklook"]}),
    ("POST", "/logs", b"{}\n"),
    ("DELETE", "/api/prefetch/1", None),
]


def _send(url: str, method: str, path: str, body: object, headers: dict[str, str]) -> requests.Response:
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    return requests.request(method, url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def _snapshot(proc: SiteProcess) -> tuple[object, ...]:
    st = status(proc.url)
    return (st["objects"]["count"], object_files(proc.store), st["sites"]["RV-Meteor"]["seq"],
            st["prefetch"], st["traffic"]["uploaded"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    proc = start(tmp_path_factory.mktemp("auth") / "sites", "RV-Meteor")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_a_write_token(site: SiteProcess, method: str, path: str, body: object) -> None:
    read_token = Tokens(site.store / "tokens.yaml").create("reader", "read")
    before = _snapshot(site)
    assert_error(_send(site.url, method, path, body, {}), 401, "unauthorized")
    assert_error(_send(site.url, method, path, body, {"Authorization": "Bearer nt_wrong"}), 403, "forbidden")
    r = _send(site.url, method, path, body, {"Authorization": f"Bearer {read_token}"})
    assert "only read" in assert_error(r, 403, "forbidden")["message"]
    assert _snapshot(site) == before


@pytest.mark.timeout(30)
def test_a_write_token_works_in_the_header_never_in_the_query(site: SiteProcess) -> None:
    r = requests.put(f"{site.url}/objects/{OID}?token={site.token}", data=DATA, timeout=TIMEOUT)
    assert_error(r, 401, "unauthorized")  # a token in a URL ends up in logs and histories
    r = requests.put(f"{site.url}/objects/{OID}", data=DATA, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {site.token}"})
    assert r.status_code in (200, 201)
    r = requests.put(f"{site.url}/objects/{RECORD_ID}", data=RECORD, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {site.token}"})
    assert r.status_code in (200, 201)
    r = requests.post(f"{site.url}/api/commit", headers={"Authorization": f"Bearer {site.token}"},
                      json={"changes": [{"op": "put", "name": "x.bin", "entry": ENTRY}]}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["seq"] == 1
    assert requests.get(f"{site.url}/data/RV-Meteor/x.bin", timeout=TIMEOUT).content == DATA


@pytest.mark.timeout(30)
def test_publish_without_or_with_a_wrong_token_raises_clearly(site: SiteProcess, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(Unauthorized, match="token"):
        eurec4a_nt.publish(path, server=site.url, progress=False)
    with pytest.raises(Forbidden, match="unknown token"):
        eurec4a_nt.publish(path, server=site.url, token="nt_not-a-token", progress=False)


@pytest.mark.timeout(60)
def test_read_token_mode_closes_reads_but_not_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor", args=["--read-token"])
    try:
        reader = Tokens(proc.store / "tokens.yaml").create("reader", "read")
        path = tmp_path / "sonde.bin"
        path.write_bytes(os.urandom(5000))
        entry = eurec4a_nt.publish(path, name="sondes/sonde.bin", server=proc.url, token=proc.token,
                                   progress=False)
        reads = ["/", "/catalog.yaml", "/sites/RV-Meteor/catalog.yaml", "/api/status", "/api/sites",
                 "/logs", f"/objects/{entry.root}", "/data/RV-Meteor/sondes/sonde.bin"]
        for path_ in reads:
            assert_error(requests.get(proc.url + path_, timeout=TIMEOUT), 401, "unauthorized")
            r = requests.get(proc.url + path_, headers={"Authorization": "Bearer nt_wrong"}, timeout=TIMEOUT)
            assert_error(r, 403, "forbidden")
            for token in (reader, proc.token):  # a write token may read too
                r = requests.get(proc.url + path_, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
                assert r.status_code == 200, (path_, r.text[:200])
        browser = requests.Session()  # asked for the token by a form, kept in a cookie, never in a URL
        form = browser.get(proc.url + "/", headers={"Accept": "text/html"}, timeout=TIMEOUT)
        assert form.status_code == 401 and 'action="/login"' in form.text
        assert browser.post(proc.url + "/login", data={"token": "nt_wrong"}, timeout=TIMEOUT).status_code == 403
        page = browser.post(proc.url + "/login", data={"token": reader}, timeout=TIMEOUT)
        assert page.status_code == 200 and "sondes/sonde.bin" in page.text and reader not in page.text
        cookie = next(c for c in browser.cookies if c.name == "nt_token")
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Strict"
        assert browser.get(proc.url + "/data/RV-Meteor/sondes/sonde.bin", timeout=TIMEOUT).ok
        assert_error(browser.put(f"{proc.url}/objects/{OID}", data=DATA, timeout=TIMEOUT), 401)  # reads only
        health = requests.get(proc.url + "/health", timeout=TIMEOUT)
        assert health.status_code == 200 and health.json()["site"] == "RV-Meteor"
        assert_error(requests.put(f"{proc.url}/objects/{OID}", data=DATA, timeout=TIMEOUT,
                                  headers={"Authorization": f"Bearer {reader}"}), 403, "forbidden")

        monkeypatch.setenv("EUREC4A_NT_TOKEN", reader)  # entries opened from the catalog use it
        cat = eurec4a_nt.open_catalog(server=proc.url)
        assert cat["RV-Meteor"]["sondes/sonde.bin"].read() == path.read_bytes()
    finally:
        proc.stop()
