"""The catalog :func:`~eurec4a_nt.api.open_catalog` returns: nested intake catalogs
built in Python, read from a site store or a site server one folder at a time.

``cat`` lists the sites (one request); ``cat[site]`` the top folder of a site: its
sub-folders (nested catalogs), its series products (:class:`SeriesSource`, opened
by date) and the entries that belong to neither
(:class:`~eurec4a_nt.sources.EntrySource`). Each folder is read when first opened,
so opening the catalog costs the same at 100,000 entries as at 100.
``cat[site]["a/b/c.nc"]`` reaches any entry by its full name without listing folders.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any

from intake.catalog import Catalog
from intake.catalog.local import LocalCatalogEntry
from intake.source.base import DataSource, Schema

from .catalog import TOP_METADATA, entry_metadata, series_info, site_info, sub_folder_info
from .entries import Entry
from .errors import BadInput, NotFound
from .formats import XARRAY_FORMATS
from .series import Product, time_range
from .sitestore import SiteStore
from .sources import EntrySource
from .version import __version__
from .versions import Pinned, at_text

if TYPE_CHECKING:
    from .client import SiteClient

#: Stores and clients the catalogs read from, by the key their entries carry (intake
#: passes an entry's arguments as plain values). Each catalog and series holds its own
#: backend, so one is dropped with the last catalog reading from it.
_BACKENDS: weakref.WeakValueDictionary[str, SiteStore | SiteClient | Pinned] = weakref.WeakValueDictionary()
_keys = itertools.count()


def _backend(key: str) -> SiteStore | SiteClient | Pinned:
    """The backend of ``key``, while a catalog reading from it is alive."""
    try:
        return _BACKENDS[key]
    except KeyError:
        raise NotFound(f"the catalog {key.split('#')[0]} was closed: open it again with open_catalog()") from None


def open_nested(backend: SiteStore | SiteClient | Pinned) -> SitesCatalog:
    """The catalog of every site ``backend`` knows, with the list of sites read now (so
    a server that cannot be reached, with nothing cached, is an error here)."""
    key = f"{backend!r}#{next(_keys)}"
    _BACKENDS[key] = backend
    catalog = SitesCatalog(backend=key)
    catalog._get_entries()
    return catalog


def storage_options(backend: SiteStore | SiteClient | Pinned, site: str) -> dict[str, Any]:
    """How an entry's ``nt://`` filesystem reads ``site``'s entries: from the store, or
    from the server and then the mirrors it names; pinned to a point of the logs."""
    if isinstance(backend, Pinned):
        return {**storage_options(backend.backend, site), "at": at_text(backend.at)}
    if isinstance(backend, SiteStore):
        return {"store": str(backend.path)}
    return backend.read_options.get(site) or {"server": backend.server}


class _Lazy(Catalog):
    """A catalog whose entries are read once, when first listed or opened."""

    version = __version__
    container = "catalog"
    partition_access = False

    def __init__(self, backend: str, **kwargs: Any) -> None:
        self.backend_key, self.backend = backend, _backend(backend)
        self._loaded = False
        super().__init__(**kwargs)

    def _load(self) -> None:
        pass  # entries are read on first use (_get_entries), not when opened

    def _get_entries(self) -> dict[str, Any]:
        if not self._loaded:
            self._entries.update(self._read())
            self._loaded = True
        return self._entries

    def _read(self) -> dict[str, LocalCatalogEntry]:
        raise NotImplementedError

    def _get_entry(self, name: str) -> Any:
        self._get_entries()
        return super()._get_entry(name)

    def walk(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._get_entries()
        return dict(super().walk(*args, **kwargs))


class SitesCatalog(_Lazy):
    """Every site: one :class:`FolderCatalog` each."""

    name = "eurec4a_nt_sites"

    def __init__(self, backend: str, **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        self.metadata: dict[str, Any] = {**TOP_METADATA, **(self.metadata or {})}

    def _read(self) -> dict[str, LocalCatalogEntry]:
        out = {}
        for site, info in self.backend.summary().items():
            description, metadata = site_info(site, info)
            out[site] = LocalCatalogEntry(site, description, FolderCatalog, metadata=metadata, catalog=self,
                                          args={"backend": self.backend_key, "site": site, "prefix": ""})
        return out


class FolderCatalog(_Lazy):
    """One folder of a site: sub-folders, series and entries."""

    name = "eurec4a_nt_folder"

    def __init__(self, backend: str, site: str, prefix: str = "", date: str | None = None,
                 start: str | None = None, end: str | None = None, **kwargs: Any) -> None:
        self.site, self.prefix = site, prefix
        super().__init__(backend, **kwargs)
        if date or start or end:  # called as a series is (sondes(date=...)): say why this is none
            names = ", ".join(itertools.islice(self._get_entries(), 3))
            raise BadInput(f"{site}/{prefix.rstrip('/')} is a folder ({names}), not a series: a series needs "
                           "two or more entries whose names differ only by their time, or a pattern in the "
                           "site's product map; open one entry by its "
                           f"name, e.g. cat[{site!r}][{prefix + 'NAME'!r}]")

    def __repr__(self) -> str:
        return f"<eurec4a_nt catalog {self.site}/{self.prefix}>"

    def _read(self) -> dict[str, LocalCatalogEntry]:
        folder = self.backend.folder(self.site, self.prefix)
        args = {"backend": self.backend_key, "site": self.site}
        out: dict[str, LocalCatalogEntry] = {}
        for sub, count in folder.folders.items():
            description, metadata = sub_folder_info(folder, sub, count)
            out[sub] = LocalCatalogEntry(sub, description, FolderCatalog, metadata=metadata, catalog=self,
                                         args={**args, "prefix": f"{self.prefix}{sub}/"})
        for product in folder.products:
            description, metadata = series_info(product, "choose with date= or start=/end=")
            out[product.key] = LocalCatalogEntry(product.key, description, SeriesSource, metadata=metadata,
                                                 catalog=self, args={**args, "product": product.to_json()})
        for entry in folder.entries:
            key = entry.name[len(self.prefix):]
            out[key] = self._entry_of(key, entry)
        return out

    def _entry_of(self, key: str, entry: Entry) -> LocalCatalogEntry:
        return LocalCatalogEntry(key, entry.description, EntrySource, args={
            "urlpath": f"nt://{self.site}/{entry.name}", "kind": entry.kind, "format": entry.format,
            "storage_options": storage_options(self.backend, self.site)}, metadata=entry_metadata(entry), catalog=self)

    def __getitem__(self, key: Any) -> Any:
        """An entry, folder or series of this folder; any entry below it by the rest of
        its name (``cat[site]["sondes/2020-02-01T1045.nc"]``). An entry is read
        directly (one request; a folder of 10,000 entries is not listed for it)."""
        if isinstance(key, str) and key not in (self._entries if self._loaded else ()):
            try:
                entry = self.backend.entry(self.site, self.prefix + key)
            except (NotFound, BadInput):
                try:
                    return super().__getitem__(key)  # intake's own lookups (dotted paths)
                except KeyError:  # not intake's split of the name at its dots
                    raise KeyError(f"{self.site} has no entry, folder or series {self.prefix + key!r}") from None
            return self._entry_of(key, entry.with_site(self.site))()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or key in self._get_entries():
            return super().__contains__(key)
        try:
            self.backend.entry(self.site, self.prefix + key)
        except (NotFound, BadInput):
            return False
        return True


class SeriesSource(DataSource):
    """A series product of a site: pick a day or a range by calling it
    (``cat["RV-Meteor"].sondes(date="2020-02-01")``, ``(start=..., end=...)``, or
    ``sondes["2020-02-01"]``); :meth:`to_dask` concatenates the selected entries
    lazily along the product's ``series_dim`` (a new dimension gets the times in the
    entries' names as its coordinate)."""

    name = "eurec4a_nt_series"
    version = __version__
    partition_access = False

    def __init__(self, backend: str, site: str, product: dict[str, Any], date: str | None = None,
                 start: str | None = None, end: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(metadata=metadata)
        self.backend_key, self.backend, self.site = backend, _backend(backend), site
        self.product = Product.from_json(product, site)
        self.selection = {"date": date, "start": start, "end": end}
        self.container = "xarray" if self.product.format in XARRAY_FORMATS else "python"

    def __repr__(self) -> str:
        chosen = ", ".join(f"{k}={v}" for k, v in self.selection.items() if v) or "choose date= or start=/end="
        return (f"<eurec4a_nt series {self.site}/{self.product.key}: {self.product.count} entries "
                f"from {self.product.first} to {self.product.last}; {chosen}>")

    def configure_new(self, **kwargs: Any) -> SeriesSource:  # type: ignore[override]
        """The same series with another selection (``date=``, or ``start=``/``end=``)."""
        return SeriesSource(self.backend_key, self.site, self.product.to_json(),
                            metadata=self.metadata, **kwargs)

    __call__ = get = configure_new  # type: ignore[assignment]

    def __getitem__(self, day: str) -> SeriesSource:
        return self(date=day)

    def entries(self) -> list[Any]:
        """The selected entries, oldest first. Raises BadInput without a selection and
        NotFound when none is in it."""
        lo, hi = time_range(**self.selection)
        found = self.backend.series_entries(self.product, lo, hi)
        if not found:
            raise NotFound(f"{self.site}/{self.product.key} has no entries from {lo} to {hi} "
                           f"(it has {self.product.first} to {self.product.last})")
        return found

    def _sources(self, entries: list[Entry]) -> list[EntrySource]:
        options = storage_options(self.backend, self.site)
        return [EntrySource(f"nt://{self.site}/{e.name}", e.kind, e.format, options,
                            metadata=entry_metadata(e)) for e in entries]

    def to_dask(self) -> Any:
        """The selected entries as one dataset, lazily."""
        import pandas as pd
        import xarray as xr

        entries = self.entries()
        if self.container != "xarray":
            raise TypeError(f"{self.product.key} is a series of {self.product.format} entries, "
                            "not datasets: use .read() for their bytes")
        datasets = [s.to_dask() for s in self._sources(entries)]
        dim = self.product.series_dim
        combined = xr.concat(datasets, dim=dim, join="outer")
        if not any(dim in ds.dims for ds in datasets):
            combined = combined.assign_coords({dim: pd.to_datetime([self.product.time_of(e.name) for e in entries])})
        return combined

    def read(self) -> Any:
        """The selected entries loaded: one dataset, or a list of bytes for other formats."""
        if self.container == "xarray":
            return self.to_dask().load()
        return [s.read() for s in self._sources(self.entries())]

    def _get_schema(self) -> Schema:
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1,
                      extra_metadata=self.metadata)

    def _get_partition(self, i: int) -> Any:
        return self.read()
