"""Bad input to every endpoint: a clear 4xx with a JSON ``{"error", "message"}``, nothing
changed, and the server up and consistent afterwards (real server, raw HTTP too)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_consistent, assert_error, auth, raw, start, start_with_sonde, state

from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.keyring import SiteKey
from eurec4a_nt.log import Change, make_commit
from eurec4a_nt.sitestore import SiteStore

ABSENT = "ef" * 32


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """RV-Meteor (with one entry) in a campaign that also has BCO; checked for damage at the end."""
    proc = start_with_sonde(tmp_path_factory.mktemp("errors"), 20_000)
    try:
        yield proc
        assert_consistent(proc)
    finally:
        proc.stop()


def _raw_get(proc: SiteProcess, path: str) -> tuple[int, bytes]:
    answer = raw(proc, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head, answer[:300]
    return int(head.split()[1]), body


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", [
    "/data/RV-Meteor/../../etc/passwd",
    "/data/RV-Meteor/%2e%2e/%2e%2e/etc/passwd",
    "/data/RV-Meteor/sondes/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/data/RV-Meteor/sondes//sonde.nc",
    "/data/%2e%2e/etc/passwd",
    "/data/RV-Meteor/..%2f..%2fetc%2fpasswd",
    "/sites/%2e%2e/catalog.yaml",
])
def test_path_traversal_is_refused(site: SiteProcess, path: str) -> None:
    code, body = _raw_get(site, path)
    assert code == 400, (code, body)
    assert b'"error": "bad-input"' in body and b"root:" not in body


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("path", "status_code", "code"), [
    ("/objects/xyz", 400, "bad-input"),
    ("/objects/" + "AB" * 32, 400, "bad-input"),
    (f"/objects/{ABSENT}?site=not%20a%20site", 400, "bad-input"),
    ("/data/NOPE/x.nc", 404, "not-found"),
    ("/data/bad%20site/x.nc", 400, "bad-input"),
    ("/data/RV-Meteor/sondes/never.nc", 404, "not-found"),
    ("/data/RV-Meteor/sondes/sonde.nc/inside", 404, "not-found"),
    ("/sites/NOPE/catalog.yaml", 404, "not-found"),
    ("/logs/NOPE", 404, "not-found"),
    ("/logs/RV-Meteor?after=nan", 400, "bad-input"),
    ("/logs/RV-Meteor?after=-1", 400, "bad-input"),
    ("/logs?since=soon", 400, "bad-input"),
    ("/api/sites/NOPE/entries", 404, "not-found"),
    ("/no/such/endpoint", 404, "not-found"),
])
def test_bad_reads_answer_json_errors(site: SiteProcess, path: str, status_code: int, code: str) -> None:
    assert_error(requests.get(site.url + path, timeout=TIMEOUT), status_code, code)


@pytest.mark.timeout(30)
def test_absent_object_is_an_error_not_data(site: SiteProcess) -> None:
    r = requests.get(f"{site.url}/objects/{ABSENT}", timeout=TIMEOUT)
    body = assert_error(r, r.status_code)
    assert (r.status_code, body["error"]) in ((404, "object-missing"), (503, "pending"))


@pytest.mark.timeout(30)
def test_bad_ranges_and_methods(site: SiteProcess) -> None:
    url = f"{site.url}/data/RV-Meteor/sondes/sonde.nc"
    assert_error(requests.get(url, headers={"Range": "lines=1-2"}, timeout=TIMEOUT), 400, "bad-input")
    r = requests.get(url, headers={"Range": "bytes=20000-"}, timeout=TIMEOUT)
    assert_error(r, 416, "range-not-satisfiable")
    assert r.headers["Content-Range"] == "bytes */20000"
    r = requests.delete(url, headers=auth(site), timeout=TIMEOUT)
    assert_error(r, 405, "method-not-allowed")
    assert "GET" in r.headers["Allow"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("path", "body"), [
    ("/objects/missing", b"{not json"),
    ("/objects/missing", b'["a list"]'),
    ("/objects/missing", b'{"ids": ["not-an-id"]}'),
    ("/objects/missing", b'{"ids": "' + b"a" * 64 + b'"}'),
    ("/objects/batch", b'{"ids": ["zz"]}'),
    ("/objects/batch", b'{"ids": [], "site": "../x"}'),
    ("/objects/urls", b'{"ids": ["zz"]}'),
    ("/objects/urls", b'{"ids": {}}'),
    ("/api/commit", b"{not json"),
    ("/api/commit", b'{"changes": []}'),
    ("/api/commit", b'{"changes": [{"op": "put", "name": "../escape", "entry": {}}]}'),
    ("/api/commit", b'{"changes": [{"op": "put", "name": "a//b", "entry": {}}]}'),
    ("/api/commit", b'{"changes": [{"op": "put", "name": "x.nc", "entry": {"name": "x.nc"}}]}'),
    ("/api/commit", b'{"changes": [{"op": "put", "name": "x.nc", "entry": "x"}]}'),
    ("/api/commit", b'{"changes": [{"op": "rename", "name": "x.nc"}]}'),
    ("/api/prefetch", b"["),
    ("/api/prefetch", b'{"topics": ["Not A Topic"]}'),
    ("/api/prefetch", b"{}"),
    ("/logs", b""),
])
def test_malformed_bodies_are_400_and_change_nothing(site: SiteProcess, path: str, body: bytes) -> None:
    before = state(site)
    r = requests.post(site.url + path, data=body, timeout=TIMEOUT,
                      headers={**auth(site), "Content-Type": "application/json"})
    assert_error(r, 400, "bad-input")
    assert state(site) == before


@pytest.mark.timeout(60)
def test_oversized_json_body_is_413(site: SiteProcess) -> None:
    body = b'{"ids": ["' + b"a" * (17 << 20) + b'"]}'
    for path in ("/objects/missing", "/api/commit"):
        r = requests.post(site.url + path, data=body, headers={**auth(site), "Content-Type": "application/json"},
                          timeout=TIMEOUT)
        assert_error(r, 413, "too-large")


@pytest.mark.timeout(30)
def test_object_that_does_not_hash_to_its_id_is_422_and_not_stored(site: SiteProcess) -> None:
    before = state(site)
    r = requests.put(f"{site.url}/objects/{ABSENT}", data=b"not those bytes", headers=auth(site), timeout=TIMEOUT)
    assert_error(r, 422, "corrupt")
    r = requests.post(f"{site.url}/objects", data=f"{ABSENT} 5\nhello".encode(), headers=auth(site),
                      timeout=TIMEOUT)
    assert_error(r, 422, "corrupt")
    assert requests.post(f"{site.url}/objects/missing", json={"ids": [ABSENT]}, timeout=TIMEOUT).json() \
        == {"missing": [ABSENT]}
    assert state(site) == before


@pytest.mark.timeout(30)
@pytest.mark.parametrize("frame", [b"not a header at all\n", b"abc 12\nxyz", b"\xff\xfe 3\nabc",
                                   ("a" * 64 + " 999999999999\n").encode()])
def test_malformed_frames_are_refused(site: SiteProcess, frame: bytes) -> None:
    before = state(site)
    r = requests.post(f"{site.url}/objects", data=frame, headers=auth(site), timeout=TIMEOUT)
    assert r.status_code in (400, 413)
    assert_error(r, r.status_code)
    assert state(site) == before


def _upload_request(proc: SiteProcess, body: bytes, length: int | None = None) -> bytes:
    return (f"POST /objects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {proc.token}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
            ).encode() + body


@pytest.mark.timeout(30)
def test_upload_truncated_mid_object_keeps_only_whole_objects(site: SiteProcess) -> None:
    whole, cut = os.urandom(3000), os.urandom(5000)
    whole_id, cut_id = hashlib.sha256(whole).hexdigest(), hashlib.sha256(cut).hexdigest()
    body = f"{whole_id} 3000\n".encode() + whole + f"{cut_id} 5000\n".encode() + cut[:1000]
    # The frame says more than the body holds (a correct Content-Length): 400 at once.
    answer = raw(site, _upload_request(site, body))
    assert answer.startswith(b"HTTP/1.1 400") and b"truncated upload" in answer, answer[:300]
    missing = requests.post(f"{site.url}/objects/missing", json={"ids": [whole_id, cut_id]}, timeout=TIMEOUT)
    assert missing.json() == {"missing": [cut_id]}  # the whole one was kept: a retry sends the rest

    # The connection drops mid-object (Content-Length promises more than arrives).
    cut2 = os.urandom(5000)
    cut2_id = hashlib.sha256(cut2).hexdigest()
    raw(site, _upload_request(site, f"{cut2_id} 5000\n".encode() + cut2[:2500], length=5100), shut=True)
    assert requests.get(site.url + "/health", timeout=TIMEOUT).ok
    missing = requests.post(f"{site.url}/objects/missing", json={"ids": [cut2_id]}, timeout=TIMEOUT)
    assert missing.json() == {"missing": [cut2_id]}


@pytest.mark.timeout(30)
def test_forged_and_out_of_order_commits_are_409_and_change_nothing(site: SiteProcess) -> None:
    before = state(site)
    stranger = SiteKey.generate()  # not in the keyring
    forged = make_commit(stranger, "BCO", 1, None, [Change("remove", "x.nc")])
    r = requests.post(f"{site.url}/logs", data=forged.raw + b"\n", headers=auth(site), timeout=TIMEOUT)
    assert "signature" in assert_error(r, 409, "bad-commit")["message"]
    own = make_commit(stranger, "RV-Meteor", 2, "0" * 64, [Change("remove", "sondes/sonde.nc")])
    r = requests.post(f"{site.url}/logs", data=own.raw + b"\n", headers=auth(site), timeout=TIMEOUT)
    assert_error(r, 409, "bad-commit")
    bco = SiteStore(site.store.parent / "BCO")  # a real campaign key, but seq 2 before seq 1
    skipped = make_commit(bco.key, "BCO", 2, "1" * 64, [Change("remove", "x.nc")])
    r = requests.post(f"{site.url}/logs", data=skipped.raw + b"\n", headers=auth(site), timeout=TIMEOUT)
    assert "out of order" in assert_error(r, 409, "bad-commit")["message"]
    r = requests.post(f"{site.url}/logs", data=b'{"site": "BCO"}\n', headers=auth(site), timeout=TIMEOUT)
    assert_error(r, 409, "bad-commit")
    assert state(site) == before
    assert requests.get(f"{site.url}/logs", timeout=TIMEOUT).json()["heads"] == before[1]

    first = make_commit(bco.key, "BCO", 1, None, [Change("remove", "x.nc")])
    r = requests.post(f"{site.url}/logs", data=first.raw + b"\n", headers=auth(site), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"added": ["BCO#1"], "rejected": []}
    r = requests.post(f"{site.url}/logs", data=first.raw + b"\n", headers=auth(site), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["added"] == []  # idempotent
    assert requests.get(f"{site.url}/logs/BCO?after=0", timeout=TIMEOUT).content == first.raw + b"\n"


@pytest.mark.timeout(30)
def test_rejected_commit_leaves_no_trace_of_its_site(tmp_path: Path) -> None:
    """A correctly signed but out-of-order commit of a site not known yet lists no site."""
    proc = start(tmp_path / "sites", "RV-Meteor", sites=["RV-Meteor", "HALO"])
    try:
        halo = SiteStore(proc.store.parent / "HALO")
        skipped = make_commit(halo.key, "HALO", 2, "1" * 64, [Change("remove", "x.nc")])
        r = requests.post(f"{proc.url}/logs", data=skipped.raw + b"\n", headers=auth(proc), timeout=TIMEOUT)
        assert_error(r, 409, "bad-commit")
        assert "HALO" not in requests.get(f"{proc.url}/api/sites", timeout=TIMEOUT).json()["sites"]
    finally:
        proc.stop()
