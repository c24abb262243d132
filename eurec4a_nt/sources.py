"""The ``eurec4a_nt`` intake driver: one entry, opened lazily.

netCDF and zarr entries open as ``xarray.Dataset`` through intake-xarray (dask
arrays with :meth:`EntrySource.to_dask`); every entry also opens as a file object
(:meth:`EntrySource.open`) or a local path (:meth:`EntrySource.local_path`). The
entry's metadata (site, topics, size, published, ...) is ``source.metadata``; its
history is :attr:`EntrySource.versions`, and :meth:`EntrySource.at` opens an old one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import fsspec
from intake.source.base import DataSource, Schema

from .display import html
from .formats import XARRAY_FORMATS
from .version import __version__
from .versions import Version

_ENGINES = {b"\x89HDF": "h5netcdf", b"CDF": "scipy"}


class EntrySource(DataSource):
    """An entry of a site, read through the ``nt://`` filesystem."""

    name = "eurec4a_nt"
    version = __version__
    partition_access = False

    def __init__(self, urlpath: str, kind: str = "file", format: str = "binary",
                 storage_options: dict[str, Any] | None = None,
                 xarray_kwargs: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(metadata=metadata)
        self.urlpath = urlpath
        self.kind = kind
        self.format = format
        self.storage_options = dict(storage_options or {})
        self.xarray_kwargs = dict(xarray_kwargs or {})
        self.container = "xarray" if format in XARRAY_FORMATS else "python"

    def __repr__(self) -> str:
        return f"<eurec4a_nt entry {self.urlpath} ({self.format}, {self.metadata.get('size', '?')} bytes)>"

    #: Not intake's YAML display, which IPython would ask before the HTML repr below.
    _ipython_display_ = None  # type: ignore[assignment]

    def _repr_html_(self) -> str | None:
        return html("source", self)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem("nt", **self.storage_options)

    def _xarray_source(self) -> Any:
        if self.format == "zarr":
            from intake_xarray.xzarr import ZarrSource

            return ZarrSource(self.urlpath, storage_options=self.storage_options,
                              consolidated=False, **self.xarray_kwargs)
        from intake_xarray.netcdf import NetCDFSource

        with self.fs.open(self.urlpath) as f:
            head = f.read(4)
        engine = next((e for magic, e in _ENGINES.items() if head.startswith(magic)), None)
        kwargs = {"engine": engine, **self.xarray_kwargs}
        return NetCDFSource(self.urlpath, storage_options=self.storage_options, xarray_kwargs=kwargs)

    def _require_xarray(self) -> None:
        if self.container != "xarray":
            raise TypeError(f"{self.urlpath} is {self.format}, not a dataset: "
                            "use .open() for a file object or .local_path() for a file")

    def to_dask(self) -> Any:
        """The dataset, lazily: data is read only when computed."""
        self._require_xarray()
        return self._xarray_source().to_dask()

    def read(self) -> Any:
        """The dataset loaded into memory, or a file entry's bytes."""
        if self.container == "xarray":
            return self._xarray_source().read()
        return self.fs.cat_file(self.urlpath)

    def open(self, mode: str = "rb") -> Any:
        """A random-access, read-only file object (file entries)."""
        return self.fs.open(self.urlpath, mode)

    def local_path(self, directory: str | os.PathLike[str] | None = None) -> str:
        """Copy the entry to a local file or folder and return its path."""
        base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="eurec4a-nt-"))
        target = base / self.urlpath.removeprefix("nt://").replace("/", "__")
        if not target.exists():
            tmp = target.with_name(target.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            self.fs.get(self.urlpath, str(tmp), recursive=self.kind != "file")
            os.replace(tmp, target)
        return str(target)

    @property
    def versions(self) -> list[Version]:
        """Every version of this entry, oldest first (removed ones as ``entry=None``), each
        with the seqs of the versions it replaced and that replaced it."""
        site, _, name = self.urlpath.removeprefix("nt://").partition("/")
        return self.fs.backend.versions(site, name)

    def at(self, point: int | str | Version) -> EntrySource:
        """This entry as it was at a point of its site's log: a seq, an ISO 8601 time, or
        one of :attr:`versions`. Raises ``NotFound`` if it did not exist then."""
        from .catalog import entry_metadata

        seq = point.seq if isinstance(point, Version) else point
        options = {**self.storage_options, "at": seq}
        entry, _ = fsspec.filesystem("nt", **options).entry(self.urlpath)
        return EntrySource(self.urlpath, kind=entry.kind, format=entry.format, storage_options=options,
                           xarray_kwargs=self.xarray_kwargs,
                           metadata={**self.metadata, **entry_metadata(entry)})

    def _get_schema(self) -> Schema:
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1,
                      extra_metadata=self.metadata)

    def _get_partition(self, i: int) -> Any:
        return self.read()
