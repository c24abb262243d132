"""A netCDF4/HDF5 file's variables as zarr v2 keys pointing at byte ranges of the file.

Computed when the file is published (kerchunk's ``SingleHdf5ToZarr``, which reads only
the file's metadata) and kept in its file record, so that a reader anywhere asks for
exactly the bytes of the chunks it reads, and learns where every chunk lies from the
record alone. A site server serves it as a zarr store at ``/zarr/<site>/<name>``
(consolidated, so stock ``xr.open_zarr`` opens it with one request).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os

from .chunking import FileRecord, Reference
from .errors import NotFound
from .zarrmeta import consolidated

log = logging.getLogger(__name__)

#: The first bytes of an HDF5 file (netCDF4 is HDF5).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Values up to this size are kept in the record rather than pointed at.
INLINE_BELOW = 64
#: A contiguous (unchunked, uncompressed) variable is shown as chunks of about this
#: size along its first dimension, so a reader of a few values reads little.
VIEW_CHUNK = 128 << 10


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
    for key in [k for k in refs if k.endswith("/.zarray")]:
        _split_contiguous(refs, key[: -len("/.zarray")])
    docs = {k: v.encode() for k, v in refs.items() if isinstance(v, str) and not v.startswith("base64:")}
    refs.update((k, v.decode()) for k, v in consolidated(docs).items())
    return refs


def _split_contiguous(refs: dict[str, Reference], var: str) -> None:
    """Show a contiguous variable (one uncompressed chunk holding it all, C order) as
    chunks of whole rows of about :data:`VIEW_CHUNK` bytes: the same bytes, in place.
    The row count divides the first dimension, so no chunk is short."""
    meta = json.loads(str(refs[f"{var}/.zarray"]))
    shape, chunks = meta.get("shape") or [], meta.get("chunks") or []
    sep = meta.get("dimension_separator") or "."
    whole = refs.get(f"{var}/" + sep.join("0" * len(shape)))
    if (not shape or shape != chunks or meta.get("compressor") or meta.get("filters")
            or meta.get("order") != "C" or not isinstance(whole, tuple)):
        return
    row = math.prod(shape[1:]) * int(meta["dtype"][2:] if meta["dtype"][1:2] in "fiuc" else 0)
    if row <= 0 or whole[1] != row * shape[0]:
        return
    wanted = max(VIEW_CHUNK // row, 1)
    rows = max((d for d in range(1, min(wanted, shape[0]) + 1) if shape[0] % d == 0), default=1)
    if rows == shape[0] or rows * row < VIEW_CHUNK // 4:
        return
    del refs[f"{var}/" + sep.join("0" * len(shape))]
    rest = sep.join("0" * (len(shape) - 1))
    for i in range(shape[0] // rows):
        refs[f"{var}/{i}" + (sep + rest if rest else "")] = (whole[0] + i * rows * row, rows * row)
    refs[f"{var}/.zarray"] = json.dumps({**meta, "chunks": [rows, *shape[1:]]}, separators=(",", ":"))


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
