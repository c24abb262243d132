"""Does every entry open? ``eurec4a-nt check`` opens entries the way a user would and
says what fails and why: for a weekly job that keeps a campaign's data usable.

netCDF and zarr entries are opened with xarray through the catalog and every variable
is read (in full up to :data:`FULL_READ_BYTES`, else its first element); every other
file entry is read in full and its size compared with the catalog's; folder entries
have each of their files read. Entries come from a store or site server (every entry,
as the catalog opens it) or from any intake catalog (its nested catalogs walked).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import entry_metadata
from .nested import storage_options
from .sources import EntrySource

#: Datasets up to this size are read in full; larger ones one element per variable.
FULL_READ_BYTES = 64 << 20


@dataclass(frozen=True)
class Checked:
    """The outcome for one entry."""

    path: str
    format: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.path} ({self.format}, {self.seconds:.1f} s): {self.detail}"


def open_entry(source: Any) -> str:
    """Open one catalog source as a user would; return what was read.

    Raises whatever opening raises (the reason a user would see).
    """
    meta = source.metadata
    if source.container == "xarray":
        ds = source.to_dask()
        if meta.get("size", 0) <= FULL_READ_BYTES:
            ds.load()
        else:
            for var in ds.variables.values():
                var[tuple(0 for _ in var.dims)].values  # noqa: B018 - reads one chunk
        return f"{len(ds.data_vars)} variables, {dict(ds.sizes)}"
    if isinstance(source, EntrySource) and meta.get("kind") != "file":
        fs, files = source.fs, source.fs.find(source.urlpath)
        parts = [fs.cat_file(path) for path in files]
    else:
        data = source.read()
        parts = data if isinstance(data, list) else [data]  # stock textfiles: one per file
    total = sum(len(p) for p in parts)
    if meta.get("kind") == "file" and total != meta.get("size"):
        raise ValueError(f"read {total} bytes; the catalog says {meta.get('size')}")
    return f"{len(parts)} file(s), {total} bytes"


def backend_sources(backend: Any, sites: Sequence[str] = ()) -> Iterator[tuple[str, Any]]:
    """``(SITE/NAME, source)`` of every entry of a store or site server, as the
    catalog's entries open (series members included)."""
    for site in sites or backend.sites():
        options = storage_options(backend, site)
        for raw in sorted(backend.entries(site).values(), key=lambda e: e.name):
            entry = raw.with_site(site)
            yield entry.path, EntrySource(f"nt://{entry.path}", entry.kind, entry.format, options,
                                          metadata=entry_metadata(entry))


def catalog_sources(catalog: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, source)`` of every data source below an intake catalog (its nested
    catalogs, such as folders and series days, walked); each source's ``metadata`` is
    the catalog's description of it."""
    from intake.catalog import Catalog

    for key, described in catalog.walk(depth=1).items():
        item = catalog[key]
        where = f"{path}/{key}" if path else key
        if isinstance(item, Catalog):
            yield from catalog_sources(item, where)
        else:
            if not getattr(item, "metadata", None):  # intake-xarray's sources keep none
                item.metadata = dict(described.describe().get("metadata") or {})
            yield where, item


def select(found: Iterable[tuple[str, Any]], topics: Sequence[str], sample: int | None,
           seed: int = 0) -> Iterator[tuple[str, Any]]:
    """The sources to check: those of ``topics`` (all if none), or ``sample`` per topic
    (chosen at random with ``seed``, so a run can be repeated)."""
    chosen = [(path, source) for path, source in found
              if not topics or set(topics) & set(source.metadata.get("topics") or [])]
    if sample is None:
        yield from chosen
        return
    by_topic: dict[str, list[tuple[str, Any]]] = {}
    for item in chosen:
        by_topic.setdefault((item[1].metadata.get("topics") or ["-"])[0], []).append(item)
    rng = random.Random(seed)
    for _, items in sorted(by_topic.items()):
        yield from rng.sample(items, min(sample, len(items)))


def check(found: Iterable[tuple[str, Any]], topics: Sequence[str] = (), sample: int | None = None,
          seed: int = 0) -> Iterator[Checked]:
    """Open each selected source and yield the outcome; one failure never stops the others."""
    for path, source in select(found, topics, sample, seed):
        start = time.monotonic()
        try:
            ok, detail = True, open_entry(source)
        except Exception as exc:  # noqa: BLE001 - any failure is what we report
            ok, detail = False, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        yield Checked(path, source.metadata.get("format", "?"), ok, detail, time.monotonic() - start)
