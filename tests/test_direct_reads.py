"""Large reads straight from the bucket of a site server on S3 (moto's server on loopback),
offered with ``serve --direct-reads``: the reader gets signed URLs for the blocks, fetches
them itself, checks each against its id, and reads through the server whatever does not
come straight (a tampered object, a URL refused or expired, a bucket out of reach)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, damage, status

import eurec4a_nt as nt
from eurec4a_nt.client import SiteClient
from eurec4a_nt.demokit.sampledata import raw_file
from eurec4a_nt.demokit.sites import SiteProcess, free_port
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import Corrupt
from eurec4a_nt.fs import NTFileSystem
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.manifests import blocks_of, entry_ref
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores.direct import PAUSE, DirectReads
from eurec4a_nt.stores.http import HTTPStore
from eurec4a_nt.testing.s3 import new_bucket

pytestmark = pytest.mark.timeout(180)

HUB = "MPI"
PATH = f"nt://{HUB}/raw/big.bin"
Hub = tuple[SiteStore, Entry, bytes, list[tuple[ObjectId, int, int]]]


@pytest.fixture
def hub(aws: dict[str, str], s3_endpoint: str, tmp_path: Path) -> Hub:
    """A site whose objects are in a fresh bucket, holding ``raw/big.bin`` (8 MiB of
    seeded incompressible bytes: always the same blocks, about 1 MiB each)."""
    store = SiteStore.init(tmp_path / HUB, HUB, objects=f"s3://{new_bucket(s3_endpoint)}/mpi")
    data = raw_file(tmp_path / "big.bin", size=8 << 20, seed=8).read_bytes()
    entry = nt.publish(tmp_path / "big.bin", name="raw/big.bin", store=store.path, progress=False)
    assert isinstance(entry, Entry)
    found = blocks_of(entry_ref(entry), SiteStore(store.path).objects.get)
    assert len(found) > 4
    return SiteStore(store.path), entry, data, found


@pytest.fixture
def bucket_gets(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The signed GETs that reached the moto server (in this process) since the last call."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    seen = 0

    def since() -> list[str]:
        nonlocal seen
        lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
        new, seen = lines[seen:], len(lines)
        return [line for line in new if re.search(r'"GET [^ ]*objects/[^ ]*Signature=', line)]
    return since


@pytest.fixture
def server(hub: Hub) -> Iterator[SiteProcess]:
    with SiteProcess(hub[0].path, args=["--direct-reads"]) as proc:
        yield proc


def served(proc: SiteProcess) -> int:
    return int(status(proc.url)["traffic"]["served"])


def reader(proc: SiteProcess, tmp_path: Path) -> NTFileSystem:
    return NTFileSystem(server=proc.url, cache=str(tmp_path / f"cache-{time.monotonic_ns()}"),
                        skip_instance_cache=True)


def test_a_large_read_comes_straight_from_the_bucket(hub: Hub, server: SiteProcess, tmp_path: Path,
                                                     bucket_gets: Callable[[], list[str]]) -> None:
    store, entry, data, found = hub
    fs = reader(server, tmp_path)
    bucket_gets()
    before = served(server)
    assert fs.cat_file(PATH) == data
    direct = fs.backend.direct  # type: ignore[attr-defined]
    assert (direct.straight, direct.through) == (len(found), 0)
    assert len(bucket_gets()) == len(found)  # one GET per block at the bucket
    assert served(server) - before < 4096  # the server sent the file record only

    # a range starting and ending inside blocks: the whole blocks between come straight
    lo, hi = found[1][1] + 100, found[4][1] + 7
    fresh = reader(server, tmp_path)
    with fresh.open(PATH) as f:
        f.seek(lo)
        assert f.read(hi - lo) == data[lo:hi]
    assert fresh.backend.direct.straight >= 2  # type: ignore[attr-defined]
    assert len(bucket_gets()) == fresh.backend.direct.straight  # type: ignore[attr-defined]

    # the same bytes through a server that offers no URLs
    with SiteProcess(store.path) as plain:
        fs = reader(plain, tmp_path)
        assert fs.cat_file(PATH) == data
        assert fs.backend.direct.straight == 0  # type: ignore[attr-defined]
        assert served(plain) >= entry.size and not bucket_gets()


def test_a_tampered_object_in_the_bucket_is_caught(hub: Hub, server: SiteProcess, tmp_path: Path,
                                                   s3_endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    store, _, data, found = hub
    oid = found[2][0]
    damage(store, s3_endpoint, oid)
    fs = reader(server, tmp_path)
    before = served(server)
    with pytest.raises(Corrupt, match=oid.short):  # the server refuses it too: never wrong bytes
        fs.cat_file(PATH)
    line, = [r.getMessage() for r in caplog.records if "not read straight" in r.getMessage()]
    assert f"1 of {len(found)} blocks" in line and f"{oid.short}: its bytes do not match its id" in line
    assert served(server) == before  # asked for the block, the server sent none of it
    # the blocks after it still come straight, into the cache
    start = found[3][1]
    assert fs.cat_file(PATH, start=start) == data[start:]
    assert fs.backend.direct.straight >= len(found) - 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("spoil", ["expired", "wrong bucket", "closed port"])
def test_a_url_that_fails_falls_back_to_the_server(hub: Hub, tmp_path: Path, spoil: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    store, _, data, found = hub
    with SiteProcess(store.path, args=["--direct-reads", "--direct-reads-expiry", "1"]) as proc:
        client = SiteClient(proc.url, cache=tmp_path / "cache")
        objects = HTTPStore(proc.url, client.http, site=HUB)
        ids = [b[0] for b in found]
        urls, expires = objects.signed_urls(ids)
        assert sorted(urls) == sorted(ids) and expires == 1
        late = 0.0
        if spoil == "expired":  # the answer arrives past the URLs' life (moto itself takes expired URLs)
            late = expires
        elif spoil == "wrong bucket":
            urls = {oid: re.sub(r"/test-[0-9a-f]+/", "/no-such-bucket/", url) for oid, url in urls.items()}
        else:
            urls = {oid: re.sub(r":[0-9]+/", f":{free_port()}/", url, count=1) for oid, url in urls.items()}
        direct = DirectReads(proc.url)
        before = served(proc)
        got = direct.get_many(ids, lambda _: (time.sleep(late), (urls, expires))[1], objects._read)
        assert b"".join(item.data for item in got) == data
        assert (direct.straight, direct.through) == (0, len(ids))
        assert served(proc) - before == len(data)
        why = {"expired": "its URL expired", "wrong bucket": "HTTP 404 NoSuchBucket",
               "closed port": "the object store is out of reach"}[spoil]
        line, = [r.getMessage() for r in caplog.records if "not read straight" in r.getMessage()]
        assert f"{len(ids)} of {len(ids)} blocks" in line and why in line
        assert f"paused for {PAUSE:.0f} s" in line and direct.paused_until > time.monotonic() + PAUSE - 60
        # paused: the next read asks for no URLs
        direct.get_many(ids[:2], lambda _: pytest.fail("URLs asked for while paused"), objects._read)


def test_urls_only_for_readers_allowed_to_read(hub: Hub) -> None:
    store, _, _, found = hub
    ids = [str(b[0]) for b in found]
    with SiteProcess(store.path, args=["--direct-reads", "--read-token"]) as proc:
        url = proc.url + "/objects/urls"
        assert_error(requests.post(url, json={"ids": ids}, timeout=TIMEOUT), 401, "unauthorized")
        assert_error(requests.post(url, json={"ids": ids}, headers={"Authorization": "Bearer nt_wrong"},
                                   timeout=TIMEOUT), 403, "forbidden")
        answer = requests.post(url, json={"ids": ids}, headers={"Authorization": f"Bearer {proc.token}"},
                               timeout=TIMEOUT).json()
        assert sorted(answer["urls"]) == sorted(ids) and answer["expires_in"] == 900
        too_many = {"ids": ids * (257 // len(ids) + 1)}
        assert_error(requests.post(url, json=too_many, headers={"Authorization": f"Bearer {proc.token}"},
                                   timeout=TIMEOUT), 400, "bad-input")
    with SiteProcess(store.path) as proc:  # not offered
        answer = requests.post(proc.url + "/objects/urls", json={"ids": ids}, timeout=TIMEOUT).json()
        assert answer == {"urls": {}, "expires_in": 0}
