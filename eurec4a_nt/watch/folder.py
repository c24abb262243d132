"""Watching one folder and publishing each file once it is complete.

A file is complete when its size and mtime have stayed unchanged for the rule's
``settle`` seconds (checked again right after reading it, so a file still being
written is never published). OS events (watchdog: inotify, FSEvents, ...) say which
files to look at; with ``poll`` the folder is scanned every ``interval`` seconds
instead, which is what works on network mounts. Every start scans the whole folder,
so files written while nothing watched are published too, and the state file
(:mod:`.state`) keeps a restart from publishing anything twice.

Close-write events are not taken as "complete": instruments that append to a file by
reopening it close it many times while writing it.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..batches import committed
from ..entries import Entry
from ..errors import BadInput, NotFound, NTError
from ..log import Change, Commit
from ..publishing import build_entry
from ..stores.base import ObjectStore
from .rules import WatchRule
from .state import Published, WatchState

log = logging.getLogger(__name__)

#: With OS events, the whole folder is still scanned this often (events can be lost).
RESCAN_SECONDS = 60.0


class Target(Protocol):
    """Where a watched folder publishes: a site store, a site server client, or the
    running server itself."""

    @property
    def site(self) -> str | None: ...

    @property
    def sink(self) -> ObjectStore: ...

    @property
    def tmp_dir(self) -> Path | None: ...

    def sites(self) -> list[str]: ...

    def entries(self, site: str) -> Mapping[str, Entry]: ...

    def commit(self, changes: list[Change]) -> Commit: ...


class Settler:
    """Which files have kept the same size and mtime for ``settle`` seconds (no I/O)."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._seen: dict[str, tuple[int, int, float]] = {}

    def observe(self, path: str, size: int, mtime_ns: int, now: float) -> None:
        """Note a file's size and mtime; a change restarts its quiet period."""
        old = self._seen.get(path)
        if old is None or old[:2] != (size, mtime_ns):
            self._seen[path] = (size, mtime_ns, now)

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)

    def ready(self, now: float) -> list[tuple[str, int, int]]:
        """``(path, size, mtime_ns)`` of files quiet for long enough, oldest first."""
        quiet = [(since, path, size, mtime) for path, (size, mtime, since) in self._seen.items()
                 if now - since >= self.settle]
        return [(path, size, mtime) for _, path, size, mtime in sorted(quiet)]

    def __len__(self) -> int:
        return len(self._seen)


class FolderWatcher:
    """Publishes the files of one folder that ``rule`` selects, each once it is complete."""

    def __init__(self, rule: WatchRule, target: Target, state: WatchState,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rule = rule
        self.root = Path(rule.dir).expanduser().resolve()
        if not self.root.is_dir():
            raise NotFound(f"watch: no folder {rule.dir}")
        self.target = target
        self.state = state
        self.clock = clock
        self.settler = Settler(rule.settle)
        self.published: list[Entry] = []
        self._key = str(self.root)
        self._refused: dict[str, tuple[int, int]] = {}
        self._touched: set[str] = set()
        self._events_lock = threading.Lock()
        self._last_scan = -float("inf")

    # -- finding candidates --------------------------------------------------------------

    def _look(self, rel: str, st: os.stat_result | None = None,
              known: Mapping[str, Published] | None = None) -> None:
        """Note the file at ``rel`` unless it is gone, not selected or already published
        (``st`` and ``known``: its stat and the folder's state rows, when a scan has them)."""
        if not self.rule.selects(rel):
            return
        try:
            st = st or os.stat(self.root / rel)
        except OSError:
            self.settler.forget(rel)
            return
        size, mtime = st.st_size, st.st_mtime_ns
        done = known.get(rel) if known is not None else self.state.get(self._key, rel)
        if (done and (done.size, done.mtime_ns) == (size, mtime)) or self._refused.get(rel) == (size, mtime):
            self.settler.forget(rel)
            return
        self.settler.observe(rel, size, mtime, self.clock())

    def scan(self) -> None:
        """Look at every file below the folder: one stat per file, one state query in all."""
        self._last_scan = self.clock()
        known = self.state.folder(self._key)
        for base, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for filename in files:
                path = Path(base, filename)
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):  # not a symlink, a socket, ...
                    self._look(path.relative_to(self.root).as_posix(), st, known)

    def touched(self, path: str) -> None:
        """An OS event named ``path`` (absolute); safe to call from any thread."""
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return
        with self._events_lock:
            self._touched.add(rel)

    def rescan_soon(self) -> None:
        """Scan the whole folder at the next step (a folder appeared or moved)."""
        self._last_scan = -float("inf")

    # -- publishing ----------------------------------------------------------------------

    def step(self) -> list[Entry]:
        """Look at what changed, publish what is complete; return the entries published."""
        interval = self.rule.interval if self.rule.poll else RESCAN_SECONDS
        if self.clock() - self._last_scan >= interval:
            self.scan()
        with self._events_lock:
            touched, self._touched = self._touched, set()
        for rel in sorted(touched):
            self._look(rel)
        ready = self.settler.ready(self.clock())
        return self._publish(ready) if ready else []

    def _publish(self, ready: list[tuple[str, int, int]]) -> list[Entry]:
        site = self.target.site or ""
        current_entry = committed(self.target, len(ready), self.rule.prefix)
        changes: list[Change] = []
        records: list[tuple[str, Published]] = []
        for rel, size, mtime in ready:
            self.settler.forget(rel)
            built = self._build(rel, size, mtime)
            if built is None:
                continue
            done = self.state.get(self._key, rel)
            current = current_entry(built.name)
            records.append((rel, Published(size, mtime, str(built.root), built.name)))
            if (done and done.root == built.root) or (current and current.root == built.root):
                continue  # the same bytes as already published: record, do not publish
            changes.append(Change("put", built.name, built))
        if changes:
            try:
                self.target.commit(changes)
            except (NTError, OSError):
                for rel, _ in records:
                    self._look(rel)  # tried again once quiet again
                raise
        self.state.set_many(self._key, records)
        entries = [c.entry.with_site(site) for c in changes if c.entry]
        for entry in entries:
            log.info("watch: published %s (%d bytes)", entry.path, entry.size)
        self.published += entries
        return entries

    def _build(self, rel: str, size: int, mtime: int) -> Entry | None:
        """Store the file's objects and describe it, or None if it changed meanwhile
        (it is looked at again) or cannot be published (said once per version)."""
        path = self.root / rel
        try:
            name = self.rule.entry_name(rel)
            if _stat(path) != (size, mtime):
                self._look(rel)
                return None
            entry = build_entry(path, name, self.target.sink, topics=self.rule.topics_for(rel),
                                tmp_dir=self.target.tmp_dir)
        except BadInput as exc:
            log.warning("watch: not publishing %s: %s", path, exc)
            self._refused[rel] = (size, mtime)
            return None
        except (NTError, OSError) as exc:  # changed while read, gone, or the target failed
            log.warning("watch: %s not published yet: %s", path, exc)
            self._look(rel)
            return None
        if _stat(path) != (size, mtime):  # written to while it was read
            self._look(rel)
            return None
        return entry

    # -- running -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; failures of one step are logged and retried."""
        observer = None if self.rule.poll else self._observe()
        tick = min(self.rule.settle / 4, self.rule.interval if self.rule.poll else 0.5)
        try:
            while not stop.is_set():
                try:
                    self.step()
                except (NTError, OSError) as exc:
                    log.warning("watch %s: %s (retrying)", self.root, exc)
                stop.wait(tick)
        finally:
            if observer is not None:
                observer.stop()
                observer.join(5)

    def _observe(self) -> Any:
        from watchdog.events import DirCreatedEvent, DirMovedEvent, FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if isinstance(event, (DirCreatedEvent, DirMovedEvent)):
                    watcher.rescan_soon()
                for path in (event.src_path, getattr(event, "dest_path", "")):
                    if path and not event.is_directory:
                        watcher.touched(os.fsdecode(path))

        observer = Observer()
        observer.schedule(Handler(), str(self.root), recursive=True)
        observer.start()
        return observer


def _stat(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def default_state_path(target: Any) -> Path:
    """Beside the store (``state/watch.sqlite``), or in the client's cache for a server."""
    if hasattr(target, "meta_dir"):
        return Path(target.meta_dir) / "watch.sqlite"
    return Path(target.path) / "state" / "watch.sqlite"


def watch_once(watcher: FolderWatcher, tick: float = 0.2) -> list[Entry]:
    """Publish every complete file of the folder now, waiting for files still being
    written to settle; return what was published."""
    watcher.scan()
    while True:
        watcher.step()
        if not len(watcher.settler):
            return watcher.published
        time.sleep(tick)
