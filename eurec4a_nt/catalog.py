"""Intake catalogs of site entries, as YAML documents (intake v1 syntax).

A site server serves stock catalogs: ``/catalog.yaml`` has one nested catalog per
site, and each site has one small catalog per folder (:class:`~eurec4a_nt.listing.
Folder`: sub-folders, series products and entries); a series has a catalog with one
source per day (``cat[site][product][day]``). They use only stock drivers
(:data:`STOCK_DRIVERS`: intake-xarray's ``netcdf`` and ``zarr``, intake's
``textfiles`` and ``yaml_file_cat``) reading the server's ``/data`` URLs with Range
requests, so plain ``intake.open_catalog(URL)`` opens every entry without this
package. A store writes flat site catalogs with the ``eurec4a_nt`` driver (see
:mod:`eurec4a_nt.sources`) for local use.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from .entries import Entry
from .folders import Folder
from .series import DEFAULT_DIM, Product, stamp_of

#: Metadata keys the catalog sets on every entry; user metadata may not use them.
RESERVED_METADATA = ("site", "name", "kind", "format", "topics", "size", "published", "root")


def entry_metadata(entry: Entry) -> dict[str, Any]:
    """What ``catalog[site][name].metadata`` shows."""
    return {
        **entry.metadata,
        "site": entry.site, "name": entry.name, "kind": entry.kind, "format": entry.format,
        "topics": list(entry.topics), "size": entry.size, "published": entry.published,
        "root": str(entry.root),
    }


#: The drivers of the served catalogs; each comes with intake or intake-xarray.
STOCK_DRIVERS = ("netcdf", "zarr", "textfiles", "yaml_file_cat")
#: What a series' day catalog is called beside its folder's catalog.
DAYS = "days.yaml"
#: Entries a folder's stock catalog lists at most: a folder with more lists them in
#: parts (:func:`parts_of`), each a small nested catalog that intake loads when opened,
#: so plain intake never parses one large file (10,000 entries are 5 MB of YAML).
PART_SIZE = 1000
#: How fsspec's HTTP filesystem reads ``/data`` URLs: in 1 MiB blocks, each fetched
#: once with a Range request. Opening a 32 MB netCDF file and reading a value of each
#: variable: 3.5 MB in 4 requests, where fsspec's default cache moved 64 MB
#: (``python -m bench.stock_reads``).
HTTP_OPTIONS: dict[str, Any] = {"cache_type": "blockcache", "block_size": 1 << 20}


#: The metadata of the catalog of all sites (which tells it from other catalogs).
TOP_METADATA = {"description": "eurec4a-nt: all sites"}


def site_info(site: str, info: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The description and metadata of ``site`` in the catalog of all sites (``info``:
    its summary, see :meth:`~eurec4a_nt.sitestore.SiteStore.summary`)."""
    return f"{site}: {info.get('entries', 0)} entries", {"site": site, **info}


def sub_folder_info(folder: Folder, sub: str, count: int) -> tuple[str, dict[str, Any]]:
    """The description and metadata of the sub-folder ``sub`` of ``folder``, which holds
    ``count`` entries."""
    return f"{count} entries", {"site": folder.site, "folder": folder.prefix + sub, "entries": count}


def series_info(product: Product, how: str) -> tuple[str, dict[str, Any]]:
    """The description (ending in ``how`` to pick from it) and metadata of a series."""
    about = f"{product.description}: " if product.description else ""
    return (f"{about}{product.count} {product.format} entries from {product.first} to {product.last}, {how}",
            {"site": product.site, "series": product.to_json()})


def site_catalog(site: str, entries: Mapping[str, Entry], storage_options: dict[str, str],
                 description: str = "") -> dict[str, Any]:
    """The flat catalog of one site's entries with the ``eurec4a_nt`` driver."""
    sources = {}
    for name, entry in sorted(entries.items()):
        sources[name] = {
            "driver": "eurec4a_nt",
            "description": entry.description,
            "args": {
                "urlpath": f"nt://{site}/{name}",
                "kind": entry.kind,
                "format": entry.format,
                "storage_options": storage_options,
            },
            "metadata": entry_metadata(entry),
        }
    return {"metadata": {"site": site, "description": description or f"entries of {site}"},
            "sources": sources}


def stock_source(entry: Entry, data_url: str, consolidated: bool | None = None) -> dict[str, Any]:
    """An entry read from ``data_url`` + its name: netCDF and zarr as datasets, any
    other file as its bytes (``textfiles`` with ``text_mode: false``)."""
    url = data_url + entry.name
    if entry.format == "zarr":
        args: dict[str, Any] = {"urlpath": url}
        if consolidated is not None:
            args["consolidated"] = consolidated
        driver = "zarr"
    elif entry.format == "netcdf" and entry.kind == "file":
        driver, args = "netcdf", {"urlpath": url, "xarray_kwargs": {"engine": None},
                                  "storage_options": dict(HTTP_OPTIONS)}
    else:
        driver = "textfiles"
        args = {"urlpath": url if entry.kind == "file" else url + "/*", "text_mode": False,
                "storage_options": dict(HTTP_OPTIONS)}
    return {"driver": driver, "description": entry.description, "args": args,
            "metadata": entry_metadata(entry)}


#: How a netCDF series of a day tells intake-xarray the time of each entry: its URL ends
#: in this query (which the server ignores), read back into the coordinate of the new
#: dimension by ``path_as_pattern: <data URL>{}?time={time:...}`` (``{}``, the name,
#: is matched and left out).
TIME_QUERY = "?time={time:%Y-%m-%dT%H:%M:%S}"


def day_source(product: Product, day: str, members: list[Entry], data_url: str) -> dict[str, Any]:
    """The entries of a series on one day: netCDF and zarr as one dataset, concatenated
    along the product's ``series_dim`` in time order; other formats as a list of bytes.
    netCDF entries concatenated along a new ``entry`` dimension get their times as its
    coordinate, as :class:`~eurec4a_nt.nested.SeriesSource` gives them. A day of one
    entry is that entry's source (intake-xarray opens a list of one file as a single
    dataset, refusing ``concat_dim``): no ``entry`` dimension."""
    about = {"description": f"{len(members)} entries of {product.key} on {day}",
             "metadata": {"site": product.site, "day": day, "entries": [e.name for e in members]}}
    if len(members) == 1:
        return stock_source(members[0], data_url) | about
    urls = [data_url + e.name for e in members]
    if product.format in ("netcdf", "zarr"):
        args: dict[str, Any] = {"urlpath": urls, "combine": "nested", "concat_dim": product.series_dim,
                                "join": "outer"}
        if product.format == "netcdf":
            args |= {"xarray_kwargs": {"engine": None}, "storage_options": dict(HTTP_OPTIONS)}
            if product.series_dim == DEFAULT_DIM:
                args["urlpath"] = [url + TIME_QUERY.format(time=product.time_of(e.name))
                                   for url, e in zip(urls, members, strict=True)]
                args["path_as_pattern"] = data_url + "{}" + TIME_QUERY
        driver = product.format
    else:
        driver, args = "textfiles", {"urlpath": urls, "text_mode": False,
                                     "storage_options": dict(HTTP_OPTIONS)}
    return {"driver": driver, "args": args, **about}


def days_catalog(product: Product, days: Mapping[str, list[Entry]], data_url: str) -> dict[str, Any]:
    """The catalog of a series: one source per day (``YYYY-MM-DD``)."""
    return {"metadata": {"site": product.site, "series": product.to_json(),
                         "description": f"{product.key}: one source per day"},
            "sources": {day: day_source(product, day, members, data_url) for day, members in days.items()}}


def parts_of(folder: Folder, size: int = PART_SIZE) -> dict[str, list[Entry]]:
    """The entries directly in ``folder`` in parts of at most ``size``, by key, when it
    has more than ``size`` (else none): by day (``2020-02-01``) when every name has a
    timestamp (see :mod:`~eurec4a_nt.series`) and no day has more than ``size``; else
    by the first characters of the names, as few as keep each part small (``IMG_00*``,
    ``IMG_01*``, ...). Keys, in name order, are never a sub-folder's or series' key."""
    if len(folder.entries) <= size:
        return {}
    taken = set(folder.folders) | {p.key for p in folder.products}
    days: dict[str, list[Entry]] = {}
    for entry in folder.entries:
        stamp = stamp_of(entry.name)
        if stamp is None:
            break
        days.setdefault(stamp.time.date().isoformat(), []).append(entry)
    else:
        if max(map(len, days.values())) <= size:
            return {_free(day, taken): members for day, members in sorted(days.items())}
    start = len(folder.prefix)
    return {_free(key + "*", taken): members for key, members in _by_start(folder.entries, start, start + 1, size)}


def _by_start(entries: list[Entry], start: int, end: int, size: int) -> Iterator[tuple[str, list[Entry]]]:
    """``entries`` (in name order) grouped by ``name[start:end]``, groups of more than
    ``size`` split again by one more character."""
    for key, group in itertools.groupby(entries, key=lambda e: e.name[start:end]):
        members = list(group)
        if len(members) > size and any(len(e.name) > end for e in members):
            yield from _by_start(members, start, end + 1, size)
        else:
            yield key, members


def _free(key: str, taken: set[str]) -> str:
    while key in taken:
        key += "_"
    return key


def folder_catalog(folder: Folder, data_url: str, folder_url: str, consolidated: Mapping[str, bool | None],
                   parts: Mapping[str, list[Entry]] | None = None) -> dict[str, Any]:
    """The stock catalog of one folder: sub-folders as nested catalogs at ``folder_url``
    + ``<sub>/catalog.yaml``, products as series, entries as :func:`stock_source`, or
    with ``parts`` (see :func:`parts_of`) each part as a nested catalog at
    ``folder_url`` + ``catalog.yaml?part=<key>`` (see :func:`part_catalog`);
    ``consolidated`` says for zarr entries whether they have consolidated metadata."""
    sources: dict[str, Any] = {}
    for sub, count in folder.folders.items():
        sources[sub] = _nested(f"{folder_url}{sub}/catalog.yaml", *sub_folder_info(folder, sub, count))
    for product in folder.products:
        sources[product.key] = _nested(f"{folder_url}{product.key}/{DAYS}",
                                       *series_info(product, "one source per day"))
    for key, members in (parts or {}).items():
        first, last = (e.name[len(folder.prefix):] for e in (members[0], members[-1]))
        sources[key] = _nested(f"{folder_url}catalog.yaml?part={quote(key, safe='')}",
                               f"{len(members)} entries, {first} to {last}",
                               {"site": folder.site, "folder": folder.prefix, "part": key,
                                "entries": len(members), "first": first, "last": last})
    for entry in folder.entries if not parts else ():
        sources[entry.name[len(folder.prefix):]] = stock_source(entry, data_url, consolidated.get(entry.name))
    where = f"{folder.site}/{folder.prefix}".rstrip("/")
    return {"metadata": {"site": folder.site, "folder": folder.prefix, "description": f"entries of {where}"},
            "sources": sources}


def part_catalog(folder: Folder, key: str, members: list[Entry], data_url: str,
                 consolidated: Mapping[str, bool | None]) -> dict[str, Any]:
    """The stock catalog of the part ``key`` of a large folder: its entries."""
    where = f"{folder.site}/{folder.prefix}".rstrip("/")
    return {"metadata": {"site": folder.site, "folder": folder.prefix, "part": key,
                         "description": f"entries of {where}, part {key}"},
            "sources": {e.name[len(folder.prefix):]: stock_source(e, data_url, consolidated.get(e.name))
                        for e in members}}


def top_catalog(sites: Mapping[str, dict[str, Any]], site_path: str) -> dict[str, Any]:
    """The catalog of all sites; ``site_path`` is a template with ``{site}``."""
    sources = {site: _nested(site_path.format(site=site), *site_info(site, info))
               for site, info in sorted(sites.items())}
    return {"metadata": dict(TOP_METADATA), "sources": sources}


def _nested(path: str, description: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A source that is the stock catalog at ``path``."""
    return {"driver": "yaml_file_cat", "description": description, "args": {"path": path},
            "metadata": metadata}


def dump(body: dict[str, Any]) -> str:
    """``body`` as YAML, with libyaml where PyYAML has it (the same text, twice as fast:
    a folder of 10,000 entries is 5 MB of it)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(body, Dumper=dumper, sort_keys=False, allow_unicode=True)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
