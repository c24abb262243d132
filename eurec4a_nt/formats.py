"""Guessing an entry's format from its first bytes and its name."""

from __future__ import annotations

import os

_MAGIC = [
    (b"\x89HDF\r\n\x1a\n", "netcdf"),
    (b"CDF\x01", "netcdf"),
    (b"CDF\x02", "netcdf"),
    (b"CDF\x05", "netcdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"%PDF", "pdf"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
]
_SUFFIX = {
    ".nc": "netcdf", ".nc4": "netcdf", ".cdf": "netcdf", ".h5": "hdf5", ".hdf5": "hdf5",
    ".zarr": "zarr", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif",
    ".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".csv": "csv",
    ".txt": "text", ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".html": "html",
    ".grib": "grib", ".grb2": "grib", ".tif": "tiff", ".tiff": "tiff",
}

#: Formats that open as an ``xarray.Dataset``.
XARRAY_FORMATS = {"netcdf", "zarr"}

#: MIME types for serving files.
MEDIA_TYPES = {
    "netcdf": "application/x-netcdf", "png": "image/png", "jpeg": "image/jpeg",
    "gif": "image/gif", "pdf": "application/pdf", "markdown": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8", "text": "text/plain; charset=utf-8",
    "json": "application/json", "yaml": "application/yaml", "html": "text/html; charset=utf-8",
}


def guess_format(name: str, head: bytes = b"") -> str:
    """The format of a file from its first bytes, else its suffix, else ``binary``."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    suffix = os.path.splitext(name.lower())[1]
    return _SUFFIX.get(suffix, "binary")


def media_type(fmt: str) -> str:
    """The MIME type to serve a format with."""
    return MEDIA_TYPES.get(fmt, "application/octet-stream")
