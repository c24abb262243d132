"""Every object store backend runs the conformance suite; plus what is specific to each.

S3 is tested against a real S3-compatible server (moto's server mode on loopback),
reached through s3fs exactly as a hub's store would be.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pytest
import requests
import xarray as xr
import yaml

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.errors import Corrupt, ObjectMissing, StoreFull
from eurec4a_nt.fsck import fsck
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores import local
from eurec4a_nt.stores.base import ObjectStore
from eurec4a_nt.stores.cached import CachingStore
from eurec4a_nt.stores.capped import CappedStore
from eurec4a_nt.stores.fsspec import FsspecStore
from eurec4a_nt.stores.grouped import GroupCommit
from eurec4a_nt.stores.http import HTTPStore
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.testing.s3 import new_bucket, s3_options
from eurec4a_nt.testing.store_tests import StoreTests, sample

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _put_behind_the_back(store: FsspecStore, oid: ObjectId, data: bytes) -> None:
    store.fs.pipe_file(f"{store.root}/{oid.path()}", data)


# -- the conformance suite on every backend ----------------------------------------------


class TestLocalStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "store")

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        path = store.local_path(oid)
        assert path is not None
        Path(path).write_bytes(data)
        return True


class TestFsspecMemoryStore(StoreTests):
    @pytest.fixture
    def store(self) -> Iterator[FsspecStore]:
        root = f"memory://store-{uuid.uuid4().hex}"
        store = FsspecStore(root)
        yield store
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        assert isinstance(store, FsspecStore)
        _put_behind_the_back(store, oid, data)
        return True


class TestFsspecFileStore(StoreTests):
    """A filesystem without atomic PUT: writes go through ``tmp/`` and a move."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> FsspecStore:
        return FsspecStore(f"file://{tmp_path}/store")

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        assert isinstance(store, FsspecStore)
        _put_behind_the_back(store, oid, data)
        return True

    def test_writes_leave_nothing_in_tmp(self, store: FsspecStore, tmp_path: Path) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(store.put, [sample(1000, seed=s) for s in range(20)] * 2))
        tmp = tmp_path / "store" / "tmp"
        assert not tmp.exists() or list(tmp.iterdir()) == []
        assert len(list(store.ids())) == 20


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    """A fresh, empty bucket, removed with its contents afterwards."""
    bucket = new_bucket(s3_endpoint)
    yield bucket
    fs = fsspec.filesystem("s3", **s3_options(s3_endpoint))
    fs.rm(bucket, recursive=True)
    fs.invalidate_cache()


class TestFsspecS3Store(StoreTests):
    @pytest.fixture
    def store(self, s3_endpoint: str, s3_bucket: str) -> FsspecStore:
        return FsspecStore(f"s3://{s3_bucket}/site-cache", **s3_options(s3_endpoint))

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        assert isinstance(store, FsspecStore)
        _put_behind_the_back(store, oid, data)
        return True

    def test_objects_are_plain_s3_keys(self, store: FsspecStore, s3_endpoint: str,
                                       s3_bucket: str) -> None:
        """Another client (boto3, not s3fs) sees the layout objects/<id[:2]>/<id>."""
        import boto3

        data = sample(12345, seed=1)
        oid = store.put(data)
        client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
        assert keys == [f"site-cache/objects/{oid[:2]}/{oid}"]
        body = client.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
        assert body == data

    def test_quarantine_moves_the_object(self, store: FsspecStore) -> None:
        oid = store.put(sample(100, seed=2))
        _put_behind_the_back(store, oid, b"damaged")
        where = store.quarantine(oid)
        assert where.startswith(f"{store.root}/quarantine/{oid}")
        assert not store.has(oid)
        assert store.fs.cat_file(where) == b"damaged"
        assert list(store.ids()) == []


class TestCachingStore(StoreTests):
    """A read-through cache over an origin: writes go to the origin, ``ids()`` lists the
    cache, and ``delete`` only drops the cached copy."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> CachingStore:
        return CachingStore(LocalStore(tmp_path / "cache"), LocalStore(tmp_path / "origin"))

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        assert isinstance(store, CachingStore)
        store.get(oid)  # bring it into the cache, then damage the cached copy
        path = store.cache.local_path(oid)
        assert path is not None
        Path(path).write_bytes(data)
        return True


class TestCappedStore(StoreTests):
    """The client's block cache: a local store with a cap (here larger than any test writes)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> CappedStore:
        return CappedStore(LocalStore(tmp_path / "capped"), cap=1 << 30)

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        path = store.local_path(oid)
        assert path is not None
        Path(path).write_bytes(data)
        return True


# -- LocalStore ----------------------------------------------------------------------------


def test_local_layout_is_objects_prefix_id(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = sample(777, seed=3)
    oid = store.put(data)
    path = tmp_path / "objects" / oid[:2] / oid
    assert path.read_bytes() == data
    assert store.local_path(oid) == str(path)
    assert store.local_path(ObjectId.of(b"absent")) is None
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) \
        == [f"objects/{oid[:2]}/{oid}"]


def test_local_writes_leave_nothing_in_tmp(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    blobs = [sample(50_000, seed=s) for s in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.put, blobs * 3))
    store.put_many((ObjectId.of(b), b) for b in blobs)
    with pytest.raises(Corrupt):
        store.put(sample(10, seed=99), ObjectId.of(b"other"))
    assert list((tmp_path / "tmp").iterdir()) == []
    assert set(store.ids()) == {ObjectId.of(b) for b in blobs}


def test_local_stale_tmp_files_are_removed_on_open(tmp_path: Path) -> None:
    LocalStore(tmp_path)
    stale, fresh = tmp_path / "tmp" / "stale.part", tmp_path / "tmp" / "fresh.part"
    stale.write_bytes(b"left by a writer killed two hours ago")
    fresh.write_bytes(b"being written right now")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    LocalStore(tmp_path)
    assert not stale.exists()
    assert fresh.exists()  # a concurrent writer's temporary file is left alone


def test_local_ignores_foreign_files_in_objects(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    oid = store.put(b"x")
    (tmp_path / "objects" / "README").write_text("not an object")
    (tmp_path / "objects" / oid[:2] / "notes.txt").write_text("not an object either")
    assert list(store.ids()) == [oid]


def test_local_quarantine(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = sample(2000, seed=4)
    oid = store.put(data)
    Path(store.local_path(oid) or "").write_bytes(b"damaged once")
    first = store.quarantine(oid)
    assert Path(first).read_bytes() == b"damaged once"
    assert Path(first).parent == tmp_path / "quarantine"
    assert not store.has(oid)
    assert list(store.ids()) == []
    # the object arrives again and is damaged again: both copies are kept as evidence
    store.put(data)
    Path(store.local_path(oid) or "").write_bytes(b"damaged twice")
    second = store.quarantine(oid)
    assert second != first
    assert Path(first).read_bytes() == b"damaged once"
    assert Path(second).read_bytes() == b"damaged twice"


def test_local_disk_full_is_store_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing is reported as StoreFull and leaves no temporary file."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    store = LocalStore(tmp_path)
    data = sample(100, seed=5)
    oid = ObjectId.of(data)
    # The temporary name is made a link to /dev/full, where every write fails with ENOSPC.
    monkeypatch.setattr(local, "_tmp_count", itertools.count())
    os.symlink("/dev/full", store.tmp / f"{oid}.{local._TMP_TAG}-{os.getpid()}-0")
    with pytest.raises(StoreFull) as info:
        store.put(data)
    assert "no space left" in str(info.value)
    assert not store.has(oid)
    assert list(store.tmp.iterdir()) == []


# -- CachingStore --------------------------------------------------------------------------


class CountingStore(LocalStore):
    """A real LocalStore that counts full reads (to see how often the origin is asked)."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        super().__init__(root)
        self.reads = 0
        self.delay = delay
        self._count_lock = threading.Lock()

    def _read(self, oid: ObjectId) -> bytes:
        with self._count_lock:
            self.reads += 1
        time.sleep(self.delay)
        return super()._read(oid)


def test_caching_reads_through_once(tmp_path: Path) -> None:
    origin = CountingStore(tmp_path / "origin")
    cache = LocalStore(tmp_path / "cache")
    data = sample(300_000, seed=6)
    oid = origin.put(data)
    store = CachingStore(cache, origin)
    assert not cache.has(oid)
    assert store.get(oid) == data
    assert cache.get(oid) == data
    assert store.get_range(oid, 10, 20) == data[10:20]
    assert store.get(oid) == data
    assert origin.reads == 1
    assert list(store.ids()) == [oid]
    assert store.local_path(oid) == cache.local_path(oid)
    store.delete(oid)  # drops the cached copy only
    assert not cache.has(oid)
    assert origin.has(oid) and store.has(oid)


def test_caching_coalesces_concurrent_misses(tmp_path: Path) -> None:
    origin = CountingStore(tmp_path / "origin", delay=0.3)
    data = sample(100_000, seed=7)
    oid = origin.put(data)
    store = CachingStore(LocalStore(tmp_path / "cache"), origin)
    barrier = threading.Barrier(6)

    def read(_: int) -> bytes:
        barrier.wait(timeout=30)
        return store.get(oid)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(read, range(6)))
    assert results == [data] * 6
    assert origin.reads == 1


def test_caching_refuses_damaged_origin_bytes(tmp_path: Path) -> None:
    origin = LocalStore(tmp_path / "origin")
    cache = LocalStore(tmp_path / "cache")
    oid = origin.put(sample(1000, seed=8))
    Path(origin.local_path(oid) or "").write_bytes(b"damaged at the origin")
    store = CachingStore(cache, origin)
    with pytest.raises(Corrupt):
        store.get(oid)
    assert not cache.has(oid)
    assert list(cache.ids()) == []


def test_caching_missing_everywhere(tmp_path: Path) -> None:
    store = CachingStore(LocalStore(tmp_path / "cache"), LocalStore(tmp_path / "origin"))
    absent = ObjectId.of(b"nowhere")
    with pytest.raises(ObjectMissing):
        store.get(absent)
    with pytest.raises(ObjectMissing):
        store.get_range(absent, 0, 1)
    assert store.missing([absent]) == [absent]


class FullStore(LocalStore):
    """A real LocalStore on a disk that is full."""

    def _write(self, oid: ObjectId, data: bytes) -> None:
        raise StoreFull("disk full")


def test_caching_read_succeeds_when_the_cache_is_full(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    origin = LocalStore(tmp_path / "origin")
    data = sample(5000, seed=9)
    oid = origin.put(data)
    store = CachingStore(FullStore(tmp_path / "cache"), origin)
    assert store.get(oid) == data
    assert store.get_range(oid, 1, 3) == data[1:3]
    assert not store.cache.has(oid)
    assert "could not keep" in caplog.text


def test_group_commit_writes_a_group_while_the_next_fills(tmp_path: Path) -> None:
    """Full groups are written in the background; after flush every object is held."""
    store = LocalStore(tmp_path / "s")
    blobs = [sample(3000, seed=k) for k in range(10)]
    with GroupCommit(store, group_bytes=5000) as sink:
        oids = [sink.put(b) for b in blobs]
    assert all(store.get(o) == b for o, b in zip(oids, blobs, strict=True))


class FullAfter(LocalStore):
    """A real LocalStore whose disk fills after ``room`` objects."""

    room = 2

    def _write(self, oid: ObjectId, data: bytes) -> None:
        if self.room <= 0:
            raise StoreFull("disk full")
        self.room -= 1
        super()._write(oid, data)


def test_group_commit_raises_a_background_write_error(tmp_path: Path) -> None:
    """A group that fails to write in the background is raised from the publisher's
    next call or from flush, never lost; what was written stays whole."""
    store = FullAfter(tmp_path / "s")
    blobs = [sample(3000, seed=k) for k in range(10)]
    with pytest.raises(StoreFull), GroupCommit(store, group_bytes=5000) as sink:
        for b in blobs:
            sink.put(b)
    held = [ObjectId.of(b) for b in blobs if store.has(ObjectId.of(b))]
    assert len(held) == 2
    assert all(store.get(o) == blobs[[ObjectId.of(b) for b in blobs].index(o)] for o in held)


# -- a whole site store with its objects on S3 ----------------------------------------------


def test_site_store_with_objects_on_s3(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    """Publish to a site whose objects live in a bucket; read back through the catalog."""
    folder = tmp_path / "MPI"
    nt.init_site("MPI", store=folder, objects=f"s3://{s3_bucket}/mpi")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["storage_options"] = s3_options(s3_endpoint)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))

    sonde = sd.sonde(tmp_path / "sonde.nc", seed=3)
    nt.publish(sonde, "sondes/s.nc", topics=["sondes"], store=folder)
    nt.publish(sd.timeseries(seed=3, hours=6), "bco/met.zarr", store=folder)
    site = SiteStore(folder)
    assert isinstance(site.objects, FsspecStore)
    assert not (folder / "objects").exists()  # nothing kept locally
    s3 = fsspec.filesystem("s3", **s3_options(s3_endpoint))
    s3.invalidate_cache()
    keys = s3.find(f"{s3_bucket}/mpi/objects")
    assert {k.rsplit("/", 1)[-1] for k in keys} == set(site.objects.ids())
    assert len(keys) > 5

    cat = nt.open_catalog(store=folder)
    with xr.open_dataset(sonde, engine="h5netcdf") as expected:
        xr.testing.assert_identical(cat["MPI"]["sondes/s.nc"].to_dask().load(), expected.load())
    xr.testing.assert_identical(cat["MPI"]["bco/met.zarr"].to_dask().load(),
                                sd.timeseries(seed=3, hours=6))
    assert fsck(site).ok


@pytest.fixture(scope="module")
def site_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    root = tmp_path_factory.mktemp("http-store")
    make_sites(root, ["BCO"])
    with SiteProcess(root / "BCO") as proc:
        yield proc


class TestHTTPStore(StoreTests):
    """A site server's object API, over real HTTP (one server for the class: it neither
    deletes nor lists, so the tests do not need it empty)."""

    large_object_size = 1 << 20

    @pytest.fixture
    def store(self, site_server: SiteProcess) -> Iterator[HTTPStore]:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {site_server.token}"
            yield HTTPStore(site_server.url, http)
