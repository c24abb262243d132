"""Objects as files in a local folder: ``<root>/objects/<id[:2]>/<id>``.

A write goes to ``<root>/tmp/``, is fsynced, and is renamed into place, so a reader,
a concurrent writer or a process killed at any moment never sees a partial object
under its final name. Leftover temporary files are removed when the store opens.
:meth:`LocalStore.put_many` verifies and writes a few objects at once, so the disk and
the filesystem's journal take their fsyncs together.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..errors import ObjectMissing, StoreFull
from ..ids import Item, ObjectId
from .base import ObjectStore, checked

#: Age after which a temporary file or folder counts as left behind by a killed writer.
_STALE_TMP_SECONDS = 3600
#: Temporary names: a tag drawn once, the process id (a forked child shares the tag) and a
#: count, rather than random bytes asked for at every write.
_TMP_TAG = uuid.uuid4().hex[:16]
_tmp_count = itertools.count()
#: Objects :meth:`LocalStore.put_many` verifies and writes at once (threads shared by
#: every store of the process).
_WRITERS = 4


@functools.cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WRITERS, thread_name_prefix="eurec4a-nt-write")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes | memoryview, tmp_dir: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename (the
    folder of ``path`` is made on the first write into it)."""
    path, tmp_dir = os.fspath(path), os.fspath(tmp_dir)
    tmp = f"{tmp_dir}/{os.path.basename(path)}.{_TMP_TAG}-{os.getpid()}-{next(_tmp_count)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view, written = memoryview(data), 0
            while written < len(view):
                written += os.write(fd, view[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFull(f"no space left to write {os.path.basename(path)} under "
                            f"{os.path.dirname(tmp_dir)}: free disk space or lower the cache cap") from None
        raise


class LocalStore(ObjectStore):
    """A store in a local folder."""

    supports_local_paths = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._objects, self._tmp = os.fspath(self.objects), os.fspath(self.tmp)  # for many writes
        self._clean_tmp()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _clean_tmp(self) -> None:
        """Remove what writers killed mid-write left in ``tmp/`` (files and the folders
        of dataset publishes) untouched for :data:`_STALE_TMP_SECONDS`; a write still
        running elsewhere is newer than that."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        for entry in os.scandir(self.tmp):
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    def _path(self, oid: ObjectId) -> Path:
        return self.objects / oid[:2] / oid

    def _read(self, oid: ObjectId) -> bytes:
        try:
            return self._path(oid).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.root}") from None

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        try:
            with open(self._path(oid), "rb") as f:
                f.seek(start)
                return f.read(max(end - start, 0))
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.root}") from None

    def _name(self, oid: ObjectId) -> str:
        """:meth:`_path` as a string, cheaper where every object pays for it."""
        return f"{self._objects}/{oid[:2]}/{oid}"

    def _write(self, oid: ObjectId, data: bytes | memoryview) -> None:
        write_atomic(self._name(oid), data, self._tmp)

    def _put_new(self, item: Item) -> bool:
        """Like :meth:`ObjectStore._put_new`, writing the bytes as they are: a block of a
        file being published is a view of what was read and hashed, never copied."""
        if self.has(item[0]):
            return False
        self._write(checked(item), item[1])
        return True

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        """Like :meth:`ObjectStore.put_many`, with up to ``_WRITERS`` objects verified and
        written (each fsynced) at once: one at a time, a store writes far below what the
        disk takes. At most ``2 * _WRITERS`` objects are held; on an error the objects
        being written are finished, their names made durable, then the error is raised."""
        pool, seen = _writers(), set()
        pending: deque[tuple[ObjectId, Future[bool]]] = deque()
        new: list[ObjectId] = []
        error: BaseException | None = None

        def settle(limit: int) -> None:
            nonlocal error
            while len(pending) > limit:
                oid, done = pending.popleft()
                try:
                    if done.result():
                        new.append(oid)
                except BaseException as exc:  # noqa: BLE001 - the first is raised below
                    error = error or exc

        try:
            for item in items:
                oid = item[0]
                if oid not in seen:
                    seen.add(oid)
                    pending.append((oid, pool.submit(self._put_new, item)))
                    if len(pending) >= 2 * _WRITERS:
                        settle(_WRITERS)
                if error is not None:
                    break
        finally:
            settle(0)
            self._flush(new)
        if error is not None:
            raise error
        return new

    def _flush(self, oids: list[ObjectId]) -> None:
        folders = [self.objects / prefix for prefix in sorted({oid[:2] for oid in oids})]
        if len(folders) > 1:  # together, so the filesystem commits them at once
            list(_writers().map(_fsync_dir, folders))
        elif folders:
            _fsync_dir(folders[0])

    def has(self, oid: ObjectId) -> bool:
        return os.path.exists(self._name(oid))

    def size(self, oid: ObjectId) -> int:
        try:
            return self._path(oid).stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(f"object {oid} is not in {self.root}") from None

    def delete(self, oid: ObjectId) -> None:
        self._path(oid).unlink(missing_ok=True)

    def ids(self) -> Iterator[ObjectId]:
        for prefix in os.scandir(self.objects):
            if not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                try:
                    yield ObjectId.parse(entry.name)
                except ValueError:
                    continue

    def sizes(self) -> Iterator[tuple[ObjectId, int]]:
        for prefix in os.scandir(self.objects):
            if not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                try:
                    yield ObjectId.parse(entry.name), entry.stat().st_size
                except (ValueError, FileNotFoundError):
                    continue

    def local_path(self, oid: ObjectId) -> str | None:
        path = self._path(oid)
        return str(path) if path.exists() else None

    def quarantine(self, oid: ObjectId) -> str:
        """Move a damaged object out of the way (to ``quarantine/``) and return where."""
        dest = self.root / "quarantine" / f"{oid}.{int(time.time())}.{uuid.uuid4().hex[:8]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(oid), dest)
        return str(dest)
