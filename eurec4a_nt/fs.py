"""The ``nt://`` fsspec protocol: every site's entries as a read-only filesystem.

``nt://SITE/NAME`` is a file entry (random access, reading only the blocks a range
needs); ``nt://SITE/NAME/<key>`` is a key inside a zarr or directory entry, so
``xr.open_zarr("nt://RV-Meteor/model/forecast.zarr")`` works. The filesystem reads
from a local site store (``store=PATH``) or from a site server (``server=URL``)
through a local content-addressed block cache, which is never stale; with
``mirrors=[URL, ...]`` too, each of them is tried in turn when the server cannot
supply something (:mod:`eurec4a_nt.mirrors`). With ``at=SEQ|TIME`` every site's
entries are shown as they were at that point of its log (:mod:`eurec4a_nt.versions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from .entries import Entry, find_entry
from .errors import BadInput, NotFound
from .manifests import Ref, RefReader, load_manifest, resolve
from .stores.base import ObjectStore
from .types import Backend
from .versions import At, parse_at


class NTFileSystem(AbstractFileSystem):
    """Read-only view of all sites' entries (``nt://SITE/NAME[/inner]``)."""

    protocol = "nt"
    root_marker = ""

    def __init__(self, store: str | None = None, server: str | None = None,
                 token: str | None = None, cache: str | None = None,
                 mirrors: list[str] | tuple[str, ...] = (), at: str | int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from .backends import open_backend

        self.backend: Backend = open_backend(store=store, server=server, token=token, cache=cache,
                                             mirrors=mirrors)
        #: The point of the logs this filesystem shows (None: now).
        self.at: At | None = None if at is None else parse_at(at)

    def entries(self, site: str) -> Mapping[str, Entry]:
        """``site``'s entries, now or at :attr:`at`."""
        return self.backend.entries(site, self.at)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:  # type: ignore[override]
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return path.removeprefix("nt://").removeprefix("nt:").strip("/")

    # -- resolving paths ---------------------------------------------------------------

    def _split(self, path: str) -> tuple[str, str]:
        site, _, rest = self._strip_protocol(path).partition("/")
        return site, rest

    def entry(self, path: str) -> tuple[Entry, str]:
        """The entry a path points into, and the path inside it."""
        site, rest = self._split(path)
        if not site or not rest:
            raise NotFound(f"{path!r} is not an entry (expected SITE/NAME)")
        return find_entry(site, self.entries(site), rest)

    def ref(self, path: str) -> tuple[Ref, ObjectStore]:
        """The ref a path points to, and the store to read it from."""
        entry, inner = self.entry(path)
        objects = self.backend.objects_for(entry.site)
        return resolve(entry, inner, objects.get), objects

    # -- the fsspec core ---------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        out = self._ls(path)
        if not out and self.info(path)["type"] == "file":
            out = [self.info(path)]
        return out if detail else [o["name"] for o in out]

    def _ls(self, path: str) -> list[dict[str, Any]]:
        site, rest = self._split(path)
        if not site:
            return [_dir(s) for s in self.backend.sites()]
        entries = self.entries(site)
        prefix = f"{rest}/" if rest else ""
        children: dict[str, dict[str, Any]] = {}
        for entry in self.backend.entries_under(site, prefix, self.at):
            head, sep, _ = entry.name[len(prefix):].partition("/")
            full = f"{site}/{prefix}{head}"
            if sep:
                children.setdefault(full, _dir(full))
            else:
                children[full] = _entry_info(full, entry)
        if children:
            return sorted(children.values(), key=lambda i: i["name"])
        try:
            entry, inner = find_entry(site, entries, rest)
        except NotFound:
            raise FileNotFoundError(f"nt://{path}") from None
        if entry.kind == "file":
            return []
        manifest = load_manifest(entry, self.backend.objects_for(site).get)
        files, dirs = manifest.listdir(inner)
        base = f"{site}/{entry.name}" + (f"/{inner}" if inner else "")
        out = [_dir(f"{base}/{d}") for d in dirs]
        key = f"{inner}/" if inner else ""
        out += [{"name": f"{base}/{f}", "type": "file", "size": manifest.ref(key + f).size}  # type: ignore[union-attr]
                for f in files]
        if not out and inner:
            raise FileNotFoundError(f"nt://{path}")
        return out

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        site, rest = self._split(path)
        if not site:
            return _dir("")
        entries = self.entries(site)
        if not rest:
            return _dir(site)
        try:
            entry, inner = find_entry(site, entries, rest)
        except NotFound:
            entry, inner = None, ""
        if entry is not None and not inner:
            return _entry_info(path, entry)
        if entry is not None:  # a key inside an entry: one lookup, whatever the site holds
            manifest = load_manifest(entry, self.backend.objects_for(site).get)
            found = manifest.ref(inner)
            if found is not None:
                return {"name": path, "type": "file", "size": found.size}
            if any(k.startswith(inner + "/") for k in manifest.keys()):
                return _dir(path)
        if next(self.backend.entries_under(site, rest + "/", self.at), None) is not None:
            return _dir(path)
        raise FileNotFoundError(f"nt://{path}")

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        try:
            ref, objects = self.ref(path)
        except NotFound as exc:
            raise FileNotFoundError(str(exc)) from None
        start, end = _clip(start, end, ref.size)
        return RefReader(ref, objects).read(start, end)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> NTFile:
        if mode != "rb":
            raise BadInput("nt:// is read-only: publish with eurec4a_nt.publish()")
        try:
            ref, objects = self.ref(path)
        except NotFound as exc:
            raise FileNotFoundError(str(exc)) from None
        return NTFile(self, path, RefReader(ref, objects), block_size=block_size,
                      cache_options=cache_options, **kwargs)

    def ukey(self, path: str) -> str:
        return self.ref(path)[0].id


class NTFile(AbstractBufferedFile):
    """A random-access file over an entry's blocks."""

    def __init__(self, fs: NTFileSystem, path: str, reader: RefReader, **kwargs: Any) -> None:
        self.reader = reader
        kwargs.setdefault("cache_type", "readahead")
        if kwargs.get("block_size") is None:
            kwargs["block_size"] = 1 << 20
        super().__init__(fs, path, mode="rb", size=reader.ref.size, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.reader.read(start, end)


def _dir(name: str) -> dict[str, Any]:
    return {"name": name, "type": "directory", "size": 0}


def _entry_info(name: str, entry: Entry) -> dict[str, Any]:
    return {
        "name": name, "type": "file" if entry.kind == "file" else "directory",
        "size": entry.size, "kind": entry.kind, "format": entry.format,
        "topics": list(entry.topics), "root": entry.root, "published": entry.published,
    }


def _clip(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    start = 0 if start is None else (size + start if start < 0 else start)
    end = size if end is None else (size + end if end < 0 else min(end, size))
    return max(start, 0), max(end, 0)
