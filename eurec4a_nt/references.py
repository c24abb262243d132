"""A netCDF4/HDF5 file's variables as zarr v2 keys pointing at byte ranges of the file.

Computed when the file is published (kerchunk's ``SingleHdf5ToZarr``, which reads only
the file's metadata) and kept in its file record, so that a reader anywhere asks for
exactly the bytes of the chunks it reads, and learns where every chunk lies from the
record alone. A site server serves it as a zarr store at ``/zarr/<site>/<name>``
(consolidated, so stock ``xr.open_zarr`` opens it with one request).
"""

from __future__ import annotations

import base64
import logging
import os

from .chunking import FileRecord, Reference
from .errors import NotFound
from .zarrmeta import consolidated

log = logging.getLogger(__name__)

#: The first bytes of an HDF5 file (netCDF4 is HDF5).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Values up to this size are kept in the record rather than pointed at.
INLINE_BELOW = 64


def hdf5_references(path: str | os.PathLike[str]) -> dict[str, Reference] | None:
    """The zarr view of the HDF5 file at ``path``, consolidated; None if it is no HDF5
    file, kerchunk is not installed, or the file has layouts a zarr view cannot express
    (then readers read the file itself, as before)."""
    with open(path, "rb") as f:
        if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            return None
        try:
            from kerchunk.hdf import SingleHdf5ToZarr
        except ImportError:
            return None
        f.seek(0)
        try:
            raw = SingleHdf5ToZarr(f, os.fspath(path), inline_threshold=INLINE_BELOW).translate()["refs"]
        except Exception as exc:  # noqa: BLE001 - any layout kerchunk cannot map: no view
            log.info("no zarr view of %s: %s", os.fspath(path), exc)
            return None
    refs: dict[str, Reference] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            refs[key] = value
        elif isinstance(value, bytes):
            refs[key] = "base64:" + base64.b64encode(value).decode()
        elif len(value) == 3:
            refs[key] = (int(value[1]), int(value[2]))
        else:
            refs[key] = (0, os.path.getsize(path))
    docs = {k: v.encode() for k, v in refs.items() if isinstance(v, str) and not v.startswith("base64:")}
    refs.update((k, v.decode()) for k, v in consolidated(docs).items())
    return refs


def value_of(refs: dict[str, Reference], key: str) -> bytes | tuple[int, int]:
    """A key's bytes, or the ``(offset, length)`` of them in the file; raise
    :class:`NotFound` if the view has no such key."""
    value = refs.get(key)
    if value is None:
        raise NotFound(f"the zarr view has no {key!r}")
    if isinstance(value, tuple):
        return value
    if value.startswith("base64:"):
        return base64.b64decode(value[len("base64:"):])
    return value.encode()


def view_of(record: FileRecord, name: str) -> dict[str, Reference]:
    """The zarr view of a file entry; raise :class:`NotFound` if it has none."""
    if record.refs is None:
        raise NotFound(f"{name} has no zarr view (only netCDF4/HDF5 files have one)")
    return record.refs
