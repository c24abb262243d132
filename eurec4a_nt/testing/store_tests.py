"""A conformance suite every :class:`~eurec4a_nt.stores.base.ObjectStore` backend runs.

Written as a pytest mixin, like zarr-python's ``StoreTests`` and fsspec's abstract test
classes: the class has no ``Test`` prefix, so pytest does not collect it on its own. A
backend's test module subclasses it, provides a ``store`` fixture returning a fresh,
empty store, and inherits every test::

    from pathlib import Path

    import pytest
    from eurec4a_nt.stores.local import LocalStore
    from eurec4a_nt.testing.store_tests import StoreTests

    class TestLocalStore(StoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            return LocalStore(tmp_path / "store")

        def damage(self, store, oid, data):  # optional: enables the verify test
            Path(store.local_path(oid)).write_bytes(data)
            return True

A store declares what it can do (``supports_delete``, ``supports_listing`` on its
class, see :class:`~eurec4a_nt.stores.base.ObjectStore`); a test of a capability the
store lacks is skipped, never silently passed. ``large_object_size`` on the test class
sets the bytes of the large round-trip object (5 MiB by default).

The optional hook :meth:`StoreTests.damage` overwrites an object's stored bytes
behind the store's back; backends where a test can do that get the
``get(verify=True)`` test.

Every test needs only the ``store`` fixture, so a backend on a remote service (S3 on
a moto server, a site server) runs the same checks as the local folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..errors import Corrupt, NotFound, ObjectMissing
from ..ids import ObjectId
from ..stores.base import ObjectStore

__all__ = ["StoreTests", "sample"]


def sample(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic, incompressible-looking bytes (different for each seed)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:n])


ABSENT = ObjectId.of(b"this object is never stored by any test")


class StoreTests:
    """Tests every object store backend must pass. Subclass it and define ``store``."""

    large_object_size: int = 5 << 20

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError(
            f"{type(self).__name__} must define a `store` fixture returning a fresh, empty ObjectStore"
        )

    def damage(self, store: ObjectStore, oid: ObjectId, data: bytes) -> bool:
        """Replace the stored bytes of ``oid`` with ``data`` behind the store's back.

        Return False (the default) where the test cannot reach the stored bytes; the
        verify test is then skipped.
        """
        return False

    # -- put and get ---------------------------------------------------------------------

    def test_put_get_round_trip(self, store: ObjectStore) -> None:
        data = sample(1000)
        oid = store.put(data)
        assert store.get(oid) == data
        assert store.get(oid, verify=True) == data

    def test_id_is_sha256_of_the_bytes(self, store: ObjectStore) -> None:
        data = sample(333, seed=1)
        oid = store.put(data)
        assert isinstance(oid, ObjectId)
        assert oid == hashlib.sha256(data).hexdigest()
        assert store.put(data, ObjectId.of(data)) == oid

    def test_put_accepts_bytearray_and_memoryview(self, store: ObjectStore) -> None:
        data = sample(100, seed=2)
        assert store.put(bytearray(data)) == ObjectId.of(data)  # type: ignore[arg-type]
        assert store.put(memoryview(sample(100, seed=3))) == ObjectId.of(sample(100, seed=3))  # type: ignore[arg-type]
        assert store.get(ObjectId.of(data)) == data

    def test_put_with_wrong_id_raises_and_stores_nothing(self, store: ObjectStore) -> None:
        data, claimed = sample(500, seed=4), ObjectId.of(b"something else")
        with pytest.raises(Corrupt):
            store.put(data, claimed)
        assert not store.has(claimed)
        assert not store.has(ObjectId.of(data))
        if store.supports_listing:
            assert list(store.ids()) == []

    def test_put_is_idempotent(self, store: ObjectStore) -> None:
        data = sample(2000, seed=5)
        first = store.put(data)
        second = store.put(data)
        assert first == second
        assert store.get(first) == data
        if store.supports_listing:
            assert list(store.ids()) == [first]

    def test_put_many_returns_only_new_ids(self, store: ObjectStore) -> None:
        a, b, c = sample(10, seed=6), sample(20, seed=7), sample(30, seed=8)
        ida = store.put(a)
        items = [(ida, a), (ObjectId.of(b), b), (ObjectId.of(c), c), (ObjectId.of(b), b)]
        new = store.put_many(items)
        assert new == [ObjectId.of(b), ObjectId.of(c)]
        assert store.put_many(items) == []
        for oid, data in items:
            assert store.get(oid) == data

    def test_put_many_accepts_a_generator(self, store: ObjectStore) -> None:
        blobs = [sample(64, seed=s) for s in range(20, 30)]
        new = store.put_many((ObjectId.of(b), b) for b in blobs)
        assert new == [ObjectId.of(b) for b in blobs]
        assert all(store.get(ObjectId.of(b)) == b for b in blobs)

    def test_put_many_refuses_a_wrong_id(self, store: ObjectStore) -> None:
        good, bad = sample(40, seed=9), sample(41, seed=10)
        wrong = ObjectId.of(b"not the bad bytes")
        with pytest.raises(Corrupt):
            store.put_many([(ObjectId.of(good), good), (wrong, bad)])
        assert not store.has(wrong)
        assert not store.has(ObjectId.of(bad))

    def test_get_many_in_order(self, store: ObjectStore) -> None:
        blobs = [sample(3000 + i) for i in range(5)]
        ids = [store.put(b) for b in blobs]
        assert [(oid, bytes(data)) for oid, data in store.get_many(ids)] == list(zip(ids, blobs, strict=True))
        with pytest.raises(ObjectMissing):
            store.get_many([ids[0], ABSENT])

    def test_get_of_absent_raises_object_missing(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectMissing) as info:
            store.get(ABSENT)
        assert isinstance(info.value, NotFound)
        assert ABSENT.short in str(info.value)
        with pytest.raises(ObjectMissing):
            store.get_range(ABSENT, 0, 10)
        with pytest.raises(ObjectMissing):
            store.size(ABSENT)
        with pytest.raises(ObjectMissing):
            store.require(ABSENT)

    def test_empty_object(self, store: ObjectStore) -> None:
        oid = store.put(b"")
        assert oid == hashlib.sha256(b"").hexdigest()
        assert store.has(oid)
        assert store.get(oid, verify=True) == b""
        assert store.size(oid) == 0
        assert store.get_range(oid, 0, 10) == b""

    def test_large_object(self, store: ObjectStore) -> None:
        data = sample(self.large_object_size, seed=11)
        oid = store.put(data)
        assert store.size(oid) == len(data)
        assert store.get(oid, verify=True) == data
        middle = len(data) // 2
        assert store.get_range(oid, middle - 7, middle + 4096) == data[middle - 7:middle + 4096]

    # -- ranges, sizes, membership -------------------------------------------------------

    def test_get_range_edges(self, store: ObjectStore) -> None:
        data = sample(1000, seed=12)
        oid = store.put(data)
        assert store.get_range(oid, 0, 1000) == data
        assert store.get_range(oid, 0, 1) == data[:1]
        assert store.get_range(oid, 999, 1000) == data[999:]
        assert store.get_range(oid, 100, 200) == data[100:200]
        assert store.get_range(oid, 990, 5000) == data[990:]  # clipped at the end
        assert store.get_range(oid, 500, 500) == b""
        assert store.get_range(oid, 1000, 1010) == b""  # at the end: nothing, no error

    def test_size(self, store: ObjectStore) -> None:
        for n in (1, 17, 4096, 100_001):
            oid = store.put(sample(n, seed=n))
            assert store.size(oid) == n

    def test_has_and_contains(self, store: ObjectStore) -> None:
        data = sample(50, seed=13)
        oid = ObjectId.of(data)
        assert not store.has(oid)
        assert oid not in store
        store.put(data)
        assert store.has(oid)
        assert oid in store
        assert str(oid) in store  # a plain str id works too
        assert "not an id" not in store
        assert 42 not in store
        store.require(oid)

    def test_missing_keeps_order_and_drops_duplicates(self, store: ObjectStore) -> None:
        held = store.put(sample(10, seed=14))
        x, y, z = (ObjectId.of(sample(10, seed=s)) for s in (15, 16, 17))
        assert store.missing([z, held, x, z, y, x]) == [z, x, y]
        assert store.missing([]) == []
        assert store.missing(iter([held])) == []

    # -- delete and listing --------------------------------------------------------------

    def test_delete(self, store: ObjectStore) -> None:
        if not store.supports_delete:
            pytest.skip(f"{type(self).__name__}: delete does not remove objects")
        keep, drop = store.put(sample(10, seed=18)), store.put(sample(10, seed=19))
        store.delete(drop)
        assert not store.has(drop)
        assert store.has(keep)
        with pytest.raises(ObjectMissing):
            store.get(drop)
        store.delete(drop)  # absent: no error
        store.delete(ABSENT)
        assert store.put(sample(10, seed=19)) == drop  # can be stored again
        assert store.get(drop) == sample(10, seed=19)

    def test_ids_lists_every_object(self, store: ObjectStore) -> None:
        if not store.supports_listing:
            pytest.skip(f"{type(self).__name__}: ids() does not list what was put")
        assert list(store.ids()) == []
        written = {store.put(sample(n, seed=n)) for n in range(1, 40)}
        listed = list(store.ids())
        assert len(listed) == len(set(listed))
        assert set(listed) == written
        assert all(isinstance(oid, ObjectId) for oid in listed)
        assert dict(store.sizes()) == {oid: store.size(oid) for oid in written}
        if store.supports_delete:
            gone = next(iter(written))
            store.delete(gone)
            assert set(store.ids()) == written - {gone}

    # -- concurrency and damage ----------------------------------------------------------

    def test_concurrent_writers_of_the_same_object(self, store: ObjectStore) -> None:
        data = sample(1 << 20, seed=20)
        barrier = threading.Barrier(8)

        def put() -> ObjectId:
            barrier.wait(timeout=30)
            return store.put(data)

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: put(), range(8)))
        assert set(ids) == {ObjectId.of(data)}
        assert store.get(ids[0], verify=True) == data
        assert store.size(ids[0]) == len(data)
        if store.supports_listing:
            assert list(store.ids()) == [ids[0]]

    def test_concurrent_writers_of_different_objects(self, store: ObjectStore) -> None:
        blobs = [sample(10_000, seed=s) for s in range(100, 132)]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(store.put, blobs))
        assert ids == [ObjectId.of(b) for b in blobs]
        assert all(store.get(oid) == b for oid, b in zip(ids, blobs, strict=True))

    def test_verify_detects_damage(self, store: ObjectStore) -> None:
        data = sample(4096, seed=21)
        oid = store.put(data)
        damaged = bytes([data[0] ^ 0xFF]) + data[1:]
        if not self.damage(store, oid, damaged):
            pytest.skip(f"{type(self).__name__}: the test cannot damage stored bytes")
        assert store.get(oid) == damaged  # without verify the bytes come back as stored
        with pytest.raises(Corrupt) as info:
            store.get(oid, verify=True)
        assert oid.short in str(info.value)
        with pytest.raises(Corrupt) as info:
            asyncio.run(store.fetch(oid))
        assert oid.short in str(info.value)

    def test_fetch_from_async_code(self, store: ObjectStore) -> None:
        blobs = [sample(300_000, seed=s) for s in range(140, 148)]
        ids = [store.put(b) for b in blobs]

        async def fetch_all() -> list[bytes]:
            return await asyncio.gather(*(store.fetch(oid) for oid in ids))

        assert asyncio.run(fetch_all()) == blobs
        with pytest.raises(ObjectMissing):
            asyncio.run(store.fetch(ABSENT))
