"""Where site logs are durable: one file of JSON lines per site in the store folder, or
one object per log position on object storage.

Both give an append that two writers can never fork: :meth:`LogFiles.create` writes
the commit of a seq only if the log still ends where the writer last read it (a
file lock and a size check in a folder; ``If-None-Match: *`` on the key of that seq
on S3). The loser gets None, re-reads the log and tries again on the new head.

A *position* says how far a log was read: a byte offset in a folder, a seq on
object storage. Readers pass back the position they were given.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BadInput

#: A commit read from a log: its bytes, the position where it starts, the position after it.
Read = tuple[bytes, int, int]
_CHUNK = 8 << 20


class LogFiles(ABC):
    """The durable logs of a store."""

    #: Whether reading a log's new end is cheap enough to do before every question.
    cheap_to_poll = True

    @abstractmethod
    def sites(self) -> list[str]:
        """Sites with a log here."""

    @abstractmethod
    def read_from(self, site: str, position: int) -> Iterator[Read]:
        """Commits durable after ``position``, oldest first (none for an absent log)."""

    @abstractmethod
    def ends_with(self, site: str, position: int, last_at: int, head: str) -> bool:
        """Whether the log still holds commit ``head`` between ``last_at`` and
        ``position`` (False if it was cut or rewritten behind the reader's back)."""

    @abstractmethod
    def create(self, site: str, seq: int, raw: bytes, position: int) -> tuple[int, int] | None:
        """Make ``raw`` the commit after ``position`` (it has seq ``seq``), durably,
        only if the log ends at ``position``; return ``(position after, position
        where it starts)``, or None if another writer got there first."""

    @abstractmethod
    def save_base(self, site: str, raw: bytes) -> None:
        """Keep the checkpoint a log starts at (a site that joined from one)."""

    @abstractmethod
    def first_position(self, base: int) -> int:
        """The position before the first commit of a log that starts after seq ``base``."""

    @abstractmethod
    def load_base(self, site: str) -> bytes | None:
        """The checkpoint the log starts at, or None for a log kept from seq 1."""


class FolderLogs(LogFiles):
    """``<folder>/<site>.jsonl``: canonical commits, one per line. An append takes
    an exclusive file lock, so writers in other processes of this machine wait; a
    line torn by a crash (no newline) was never acknowledged and is cut off by the
    next writer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FolderLogs({str(self.folder)!r})"

    def path(self, site: str) -> Path:
        return self.folder / f"{site}.jsonl"

    def sites(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.jsonl"))

    def save_base(self, site: str, raw: bytes) -> None:
        from .stores.local import write_atomic

        write_atomic(self.folder / f"{site}.base", raw, self.folder)

    def first_position(self, base: int) -> int:
        return 0

    def load_base(self, site: str) -> bytes | None:
        try:
            return (self.folder / f"{site}.base").read_bytes()
        except FileNotFoundError:
            return None

    def read_from(self, site: str, position: int) -> Iterator[Read]:
        try:
            f = open(self.path(site), "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(position)
            pending = b""
            while data := f.read(_CHUNK):
                pending += data
                end = pending.rfind(b"\n") + 1
                start = 0
                while start < end:
                    stop = pending.index(b"\n", start)
                    yield pending[start:stop], position + start, position + stop + 1
                    start = stop + 1
                position += end
                pending = pending[end:]

    def ends_with(self, site: str, position: int, last_at: int, head: str) -> bool:
        try:
            with open(self.path(site), "rb") as f:
                if os.fstat(f.fileno()).st_size < position:
                    return False
                f.seek(last_at)
                line = f.read(position - last_at)
        except FileNotFoundError:
            return False
        return line.endswith(b"\n") and hashlib.sha256(line[:-1]).hexdigest() == head

    def create(self, site: str, seq: int, raw: bytes, position: int) -> tuple[int, int] | None:
        with open(self.path(site), "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                size = _cut_torn_tail(f)
                if size != position:
                    return None
                f.write(raw + b"\n")
                f.flush()
                os.fsync(f.fileno())
                return position + len(raw) + 1, position
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _cut_torn_tail(f: Any) -> int:
    """Cut off a last line left without its newline by a crash; return the size."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(end - (64 << 10), 0)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            os.ftruncate(fd, start + found + 1)
            return start + found + 1
        end = start
    os.ftruncate(fd, 0)
    return 0


class ObjectLogs(LogFiles):
    """``<url>/logs/<site>/<seq>`` on object storage (S3 or compatible), one object
    per commit, written with ``If-None-Match: *``: of two writers of one seq, exactly
    one succeeds. Existence is always asked of the store itself (no listing cache)."""

    cheap_to_poll = False
    #: Log positions read at once when catching up.
    BATCH = 64

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        self.root = f"{root.rstrip('/')}/logs"
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if not {"s3", "s3a"} & set(protocols):
            raise BadInput(f"site logs on {url} need conditional writes (If-None-Match), "
                           "which this system uses on S3-compatible storage only; "
                           "keep logs in the store folder")

    def __repr__(self) -> str:
        return f"ObjectLogs({self.url!r})"

    def _key(self, site: str, seq: int) -> str:
        return f"{self.root}/{site}/{seq:012d}"

    def save_base(self, site: str, raw: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/{site}/base", raw)

    def first_position(self, base: int) -> int:
        return base

    def load_base(self, site: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(f"{self.root}/{site}/base"))
        except FileNotFoundError:
            return None

    def sites(self) -> list[str]:
        try:
            listing = self.fs.ls(self.root, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listing)

    def read_from(self, site: str, position: int) -> Iterator[Read]:
        """One GET for a log that did not grow; catching up, the keys are read in
        batches that double while every key is found (up to :data:`BATCH` at once)."""
        seq, batch = position, 1
        while True:
            keys = [self._key(site, s) for s in range(seq + 1, seq + 1 + batch)]
            found = self.fs.cat(keys, on_error="return") if batch > 1 else {keys[0]: self._get(keys[0])}
            for key in keys:
                data = found.get(key)
                if not isinstance(data, bytes):
                    return
                yield data, seq, seq + 1
                seq += 1
            batch = min(batch * 2, self.BATCH)

    def _get(self, key: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(key))
        except FileNotFoundError:
            return None

    def ends_with(self, site: str, position: int, last_at: int, head: str) -> bool:
        try:
            data = self.fs.cat_file(self._key(site, position))
        except FileNotFoundError:
            return False
        return hashlib.sha256(data).hexdigest() == head

    def create(self, site: str, seq: int, raw: bytes, position: int) -> tuple[int, int] | None:
        if seq != position + 1:
            return None
        try:
            self.fs.pipe_file(self._key(site, seq), raw, mode="create")
        except (FileExistsError, PermissionError):
            return None
        except OSError as exc:  # s3fs maps 412 Precondition Failed to EINVAL
            if exc.errno == errno.EINVAL or "Precondition" in str(exc):
                return None
            raise
        return seq, position
