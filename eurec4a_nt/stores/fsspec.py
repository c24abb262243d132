"""Objects on any fsspec filesystem (S3-compatible object storage, SFTP, ...).

Object stores such as S3 make a single PUT atomic, so objects are written in place;
on other filesystems a write goes to ``tmp/`` and is moved into place.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
import fsspec.asyn

from ..errors import ObjectMissing
from ..ids import ObjectId
from .base import ObjectStore

#: Protocols whose filesystems would answer "absent" from a cached listing for an object
#: another process wrote since: existence is asked of the store every time.
NO_LISTING_CACHE = {"s3", "s3a", "gs", "gcs", "az", "abfs"}
#: Protocols whose single-object PUT is atomic (no partial object is ever visible).
ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "memory"}
#: Objects whose presence an async filesystem is asked about at once (see ``missing``).
ASKED_AT_ONCE = 64


class FsspecStore(ObjectStore):
    """A store under any fsspec URL, e.g. ``s3://bucket/site-cache``."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        if url.split("://", 1)[0] in NO_LISTING_CACHE:
            storage_options = {"use_listings_cache": False, **storage_options}
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._atomic = bool(ATOMIC_PUT.intersection(protocols))

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"

    def _path(self, oid: ObjectId) -> str:
        return f"{self.root}/{oid.path()}"

    def _read(self, oid: ObjectId) -> bytes:
        try:
            return self.fs.cat_file(self._path(oid))
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.url}") from None

    async def fetch(self, oid: ObjectId) -> bytes:
        """On an async filesystem (s3fs, gcsfs ...), the GET runs on the filesystem's own
        event loop (the one its synchronous calls use), so many fetches share its
        connection pool with no thread each, and cancelling the fetch cancels the GET;
        the bytes are hashed on a worker thread."""
        if not self.fs.async_impl:
            return await super().fetch(oid)
        transfer = asyncio.run_coroutine_threadsafe(self.fs._cat_file(self._path(oid)), self.fs.loop)
        try:
            data = await asyncio.wrap_future(transfer)
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.url}") from None
        return await asyncio.to_thread(self.intact, oid, data)

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, clipped to the object's size like a slice."""
        if end <= start:
            self.require(oid)
            return b""
        try:
            return self.fs.cat_file(self._path(oid), start=start, end=end)
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.url}") from None
        except OSError:  # S3 answers 416 to a range that starts at or past the end
            if start >= self.size(oid):
                return b""
            raise

    def _write(self, oid: ObjectId, data: bytes) -> None:
        path = self._path(oid)
        if self._atomic:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{self.root}/tmp/{oid}.{uuid.uuid4().hex}"
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
        try:
            self.fs.pipe_file(tmp, data)
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(tmp, path)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)
            raise

    def has(self, oid: ObjectId) -> bool:
        return bool(self.fs.exists(self._path(oid)))

    def missing(self, oids: Iterable[ObjectId]) -> list[ObjectId]:
        """On an async filesystem (S3 has no request answering for many keys: a HEAD
        each), :data:`ASKED_AT_ONCE` objects are asked for at once on the filesystem's
        own event loop, not one after the other."""
        ids = list(dict.fromkeys(oids))
        if not self.fs.async_impl or len(ids) < 2:
            return super().missing(ids)
        held = fsspec.asyn.sync(self.fs.loop, self._exist, [self._path(oid) for oid in ids])
        return [oid for oid, here in zip(ids, held, strict=True) if not here]

    async def _exist(self, paths: list[str]) -> list[bool]:
        out: list[bool] = []
        for i in range(0, len(paths), ASKED_AT_ONCE):
            out += await asyncio.gather(*(self.fs._exists(p) for p in paths[i:i + ASKED_AT_ONCE]))
        return [bool(here) for here in out]

    def urls(self, oids: list[ObjectId], expires: int) -> dict[ObjectId, str]:
        """Signed by the filesystem's ``sign`` (on S3: presigned GET URLs at the endpoint
        the store is configured with, made here with no request); none on a filesystem
        that cannot sign."""
        try:
            return {oid: self.fs.sign(self._path(oid), expiration=expires) for oid in oids}
        except NotImplementedError:
            return {}

    def size(self, oid: ObjectId) -> int:
        try:
            return int(self.fs.size(self._path(oid)))
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.url}") from None

    def delete(self, oid: ObjectId) -> None:
        try:
            self.fs.rm_file(self._path(oid))
        except FileNotFoundError:
            pass

    def ids(self) -> Iterator[ObjectId]:
        return (oid for oid, _ in self.sizes())

    def sizes(self) -> Iterator[tuple[ObjectId, int]]:
        """Ids and sizes from one listing (pages of 1,000 keys on S3, not a HEAD each)."""
        try:
            found = self.fs.find(f"{self.root}/objects", detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            try:
                yield ObjectId.parse(path.rsplit("/", 1)[-1]), int(info["size"])
            except (ValueError, KeyError, TypeError):
                continue

    def quarantine(self, oid: ObjectId) -> str:
        """Move a damaged object to ``quarantine/`` and return where."""
        dest = f"{self.root}/quarantine/{oid}.{uuid.uuid4().hex[:8]}"
        self.fs.mv(self._path(oid), dest)
        return dest
