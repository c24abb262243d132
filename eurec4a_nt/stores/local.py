"""Objects as files in a local folder: ``<root>/objects/<id[:2]>/<id>``.

A write goes to ``<root>/tmp/``, is fsynced, and is renamed into place, so a reader,
a concurrent writer or a process killed at any moment never sees a partial object
under its final name. Leftover temporary files are removed when the store opens.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import ObjectMissing, StoreFull
from ..ids import ObjectId
from .base import ObjectStore

_STALE_TMP_SECONDS = 3600


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFull(f"no space left to write {path.name} under {tmp_dir.parent}: "
                            "free disk space or lower the cache cap") from None
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
        self._clean_tmp()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _clean_tmp(self) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for entry in os.scandir(self.tmp):
            try:
                if entry.stat().st_mtime < cutoff:
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

    def _write(self, oid: ObjectId, data: bytes) -> None:
        path = self._path(oid)
        if path.exists():
            return
        write_atomic(path, data, self.tmp)

    def _flush(self, oids: list[ObjectId]) -> None:
        for prefix in sorted({oid[:2] for oid in oids}):
            _fsync_dir(self.objects / prefix)

    def has(self, oid: ObjectId) -> bool:
        return self._path(oid).exists()

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

    def local_path(self, oid: ObjectId) -> str | None:
        path = self._path(oid)
        return str(path) if path.exists() else None

    def quarantine(self, oid: ObjectId) -> str:
        """Move a damaged object out of the way (to ``quarantine/``) and return where."""
        dest = self.root / "quarantine" / f"{oid}.{int(time.time())}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(oid), dest)
        return str(dest)
