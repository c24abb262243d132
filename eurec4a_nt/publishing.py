"""Turning what a user publishes (files, folders, zarr stores, xarray datasets) into
objects and an :class:`Entry`.

The objects go to any :class:`ObjectStore`: the site's own store when publishing
locally, or a site server (which is asked first which objects it lacks) when
publishing over the LAN. Signing the commit is the caller's business.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import zarrmeta
from .chunking import FileRecord, record_file
from .entries import Entry, check_name, check_topics, utc_now
from .errors import BadInput, NotFound
from .formats import guess_format
from .ids import Hashed, ObjectId
from .manifests import Manifest, Ref, small_enough
from .references import HDF5_SIGNATURE, hdf5_references
from .stores.base import Sink

if TYPE_CHECKING:
    import xarray as xr

Progress = Callable[[int], None]

#: Target size of a zarr chunk chosen for a dataset that has no chunking of its own.
ZARR_CHUNK_BYTES = 1 << 20
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")


def is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and (path.suffix == ".zarr" or any((path / m).exists() for m in _ZARR_MARKERS))


def _put_record(record: FileRecord, sink: Sink) -> ObjectId:
    return sink.put(record.to_bytes())


def store_file(path: Path, sink: Sink, progress: Progress | None = None,
               head: bytes | None = None) -> tuple[ObjectId, int]:
    """Store a file as blocks plus a file record; return the record's id and the size.

    The record of a netCDF4/HDF5 file carries its zarr view (see :mod:`.references`)
    and the hash tree root of each block, so its chunks can be read in verified parts.
    ``head`` is the file's first bytes where the caller has read them already."""
    if head is None:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    hdf5 = head.startswith(HDF5_SIGNATURE)
    record = record_file(path, sink.put_many, progress, trees=hdf5)  # its chunks are read in parts
    refs = hdf5_references(path) if hdf5 else None
    if refs is not None:
        record = dataclasses.replace(record, refs=refs)
    return _put_record(record, sink), record.size


def store_tree(path: Path, kind: str, sink: Sink, progress: Progress | None = None) -> Manifest:
    """Store every file under ``path`` and return the (unstored) manifest.

    A zarr store gets consolidated metadata if it has none, and what a reader opening
    it needs first is inlined in the manifest (see :mod:`eurec4a_nt.zarrmeta`)."""
    files = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*"))
             if p.is_file() and not p.is_symlink()}
    sizes = {key: p.stat().st_size for key, p in files.items()}
    values: dict[str, bytes] = {}  # values decided here rather than read from ``files``
    inline: dict[str, bytes] = {}
    if kind == "zarr":
        values = {k: files[k].read_bytes() for k in files if zarrmeta.is_metadata(k) and small_enough(sizes[k])}
        values.update(zarrmeta.consolidated(values))
        sizes.update((k, len(v)) for k, v in values.items())
        for key in zarrmeta.inline_keys(values, sizes):
            inline[key] = values[key] if key in values else files[key].read_bytes()
            if progress:
                progress(sizes[key])
    items: dict[str, Ref] = {}
    small = [k for k in sizes if small_enough(sizes[k]) and k not in inline]

    def small_objects() -> Iterator[Hashed]:
        for key in small:
            item = Hashed.of(values[key] if key in values else files[key].read_bytes())
            items[key] = Ref(item.id, len(item.data))
            yield item
            if progress:
                progress(len(item.data))

    sink.put_many(small_objects())
    for key in sizes:
        if not small_enough(sizes[key]):
            oid, size = store_file(files[key], sink, progress)
            items[key] = Ref(oid, size, record=True)
    return Manifest("zarr" if kind == "zarr" else "directory", items, inline)


def _zarr_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Chunks for variables that have none: about 1 MiB, cut along the first dimension only,
    so that appending along it leaves every earlier chunk's bytes unchanged."""
    encoding = {}
    for name, var in ds.variables.items():
        if var.ndim == 0 or var.chunks is not None or "chunks" in var.encoding:
            continue
        row = max(math.prod(var.shape[1:]) * var.dtype.itemsize, 1)
        encoding[str(name)] = {"chunks": (max(ZARR_CHUNK_BYTES // row, 1), *var.shape[1:])}
    return encoding


def store_dataset(ds: xr.Dataset, sink: Sink, tmp_dir: Path | None,
                  progress: Progress | None = None) -> Manifest:
    """Write an xarray dataset as zarr (v3) and store its keys."""
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="dataset-") as tmp:
        target = Path(tmp) / "data.zarr"
        ds.to_zarr(target, mode="w", encoding=_zarr_encoding(ds), zarr_format=3, consolidated=False)
        return store_tree(target, "zarr", sink, progress)


def check_source(obj: Any) -> Path | None:
    """The path to publish (None for an ``xarray.Dataset``); raise :class:`BadInput` for
    anything else and :class:`NotFound` for a path that does not exist."""
    if _is_dataset(obj):
        return None
    path = Path(os.fspath(obj)) if isinstance(obj, (str, os.PathLike)) else None
    if path is None:
        raise BadInput(f"cannot publish a {type(obj).__name__}: give a path or an xarray.Dataset")
    if not path.exists():
        raise NotFound(f"no such file or folder: {path}")
    return path


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A copy of ``metadata`` if it is a JSON object; raise :class:`BadInput` otherwise."""
    if metadata is not None and not isinstance(metadata, dict):
        raise BadInput("metadata must be a dict (a JSON object)")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"metadata must hold only JSON values (strings, numbers, lists, dicts): {exc}") from None
    return dict(metadata or {})


def build_entry(obj: Any, name: str, sink: Sink, *, topics: Any = (), description: str = "",
                metadata: dict[str, Any] | None = None, format: str | None = None,
                tmp_dir: Path | None = None, progress: Progress | None = None) -> Entry:
    """Store ``obj`` (a path or an ``xarray.Dataset``) in ``sink`` and describe it as an entry.

    Bad input is refused before anything is stored."""
    check_name(name)
    topics = check_topics(topics)
    common = {"topics": topics, "description": str(description),
              "metadata": check_metadata(metadata), "published": utc_now()}
    path = check_source(obj)
    if path is None:
        manifest = store_dataset(obj, sink, tmp_dir, progress)
        root = sink.put(manifest.to_bytes())
        return Entry(name, "zarr", root, manifest.size, format or "zarr", **common)
    if path.is_dir():
        kind = "zarr" if is_zarr_dir(path) else "directory"
        manifest = store_tree(path, kind, sink, progress)
        root = sink.put(manifest.to_bytes())
        return Entry(name, kind, root, manifest.size, format or kind, **common)
    with open(path, "rb") as f:
        head = f.read(16)
    root, size = store_file(path, sink, progress, head)
    return Entry(name, "file", root, size, format or guess_format(path.name, head), **common)


def _is_dataset(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "Dataset" and cls.__module__.startswith("xarray")


def total_size(obj: Any) -> int:
    """Bytes to publish, for progress bars (0 if unknown)."""
    if _is_dataset(obj):
        return int(obj.nbytes)
    path = Path(os.fspath(obj)) if isinstance(obj, (str, os.PathLike)) else None
    if path is None or not path.exists():
        return 0
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
