"""What users import: publish, remove, open_catalog, prefetch, init_site, browse.

Every call works on a local site store (``store=``) or through the site server
(``server=``); see :mod:`eurec4a_nt.config` for how the default is found.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import open_backend
from .batches import Batches
from .catalog import RESERVED_METADATA
from .config import DEFAULT_STORE
from .entries import Entry, EntryList, check_name, check_topics
from .errors import BadInput
from .extras import require
from .keyring import KeyringSite
from .log import Change
from .progress import progress_bar
from .publishing import build_entry, check_metadata, check_source, total_size
from .stores.grouped import GroupCommit
from .versions import Pinned, parse_at

if TYPE_CHECKING:
    from .client import SiteClient
    from .sitestore import SiteStore

PathLike = str | os.PathLike[str]


def init_site(site: str, store: PathLike = DEFAULT_STORE, objects: str | None = None,
              urls: Iterable[str] = (), local: PathLike | None = None) -> KeyringSite:
    """Create the store of ``site`` with a new signing key; return its keyring line.

    ``store`` is a folder, or an S3 URL (``s3://bucket/prefix``) that then holds the
    objects and the site log, while the key, the config and the state stay in the
    folder ``local`` (default ``site-cache``). ``objects`` puts only the objects on
    any fsspec URL.
    """
    from .sitestore import SiteStore, is_url

    if is_url(store):
        store_ = SiteStore.init(local or DEFAULT_STORE, site, objects=str(store), logs=str(store),
                                urls=urls)
    else:
        store_ = SiteStore.init(store, site, objects=objects, urls=urls)
    return store_.keyring.sites[site]


def _target(store: PathLike | None, server: str | None, token: str | None) -> SiteStore | SiteClient:
    return open_backend(store=store, server=server, token=token)  # type: ignore[return-value]


def publish(obj: Any, name: str | None = None, topics: str | Sequence[str] = (),
            description: str = "", metadata: dict[str, Any] | None = None,
            format: str | None = None, *, store: PathLike | None = None,
            server: str | None = None, token: str | None = None,
            progress: bool | None = None) -> Entry | list[Entry]:
    """Publish a file, a folder (a ``.zarr`` store included), several paths, or an
    ``xarray.Dataset`` under ``name``; return the entry (a list for several paths).
    Several paths, or a path with a ``name`` ending in ``/`` (``"quicklooks/"``), go in
    the folder ``name`` under their own file names.

    Only objects the store lacks are stored (or uploaded). The call returns once the
    data is durable and the signed commits are in the site log. Any number of paths
    go in as many commits as the commit size limit needs, each made as soon as it is
    full; a call cut short keeps what it committed, and run again commits only
    entries that differ from the current ones. Publishing a name again with other
    contents replaces the entry.
    """
    topics = check_topics(topics)
    for key in metadata or {}:
        if key in RESERVED_METADATA:
            raise BadInput(f"metadata key {key!r} is reserved; reserved: {', '.join(RESERVED_METADATA)}")
    many = isinstance(obj, (list, tuple))
    into = name is not None and name.endswith("/")  # a folder: each path goes in under its own name
    items = list(obj) if many else [obj]
    if not items:
        raise BadInput("nothing to publish")
    if name is None:
        if many or not isinstance(obj, (str, os.PathLike)):
            raise BadInput("give a name= for a dataset or several paths")
        name = Path(os.fspath(obj)).name
    name = check_name(name.rstrip("/") if into else name)
    for item in items:  # refuse bad input before storing anything
        if check_source(item) is None and (many or into):
            raise BadInput("publish datasets one at a time, each with its own name=")
    check_metadata(metadata)
    names = [check_name(f"{name}/{Path(os.fspath(p)).name}") for p in items] if many or into else [name]
    target = _target(store, server, token)
    tmp_dir = getattr(target, "tmp_dir", None)
    total = 0 if progress is False else sum(total_size(o) for o in items)  # a stat or more per path
    with (progress_bar(total, f"publish {name}", progress, estimated=True) as bar,
          GroupCommit(target.sink) as sink):
        batches = Batches(target, len(items), durable=sink.flush, prefix=posixpath.commonpath(names))
        for item, item_name in zip(items, names, strict=True):
            batches.add(build_entry(item, item_name, sink, topics=topics,
                                    description=description, metadata=metadata, format=format,
                                    tmp_dir=tmp_dir, progress=bar.update))
        batches.close()
    where = f"server={json.dumps(target.server)}" if hasattr(target, "server") else \
        f"store={json.dumps(str(target.path))}"
    by_name = {e.name: replace(e.with_site(target.site or ""), opened_with=where) for e in batches.published}
    published = [by_name[n] for n in names]
    return EntryList(published) if many else published[0]


def remove(name: str | Sequence[str], *, store: PathLike | None = None, server: str | None = None,
           token: str | None = None) -> None:
    """Remove entries of this site (a new commit; their objects stay until evicted)."""
    names = [name] if isinstance(name, str) else list(name)
    target = _target(store, server, token)
    for n in names:
        target.entry(target.site or "", check_name(n))  # raises NotFound for a wrong name
    target.commit([Change("remove", n) for n in names])


def open_catalog(*, store: PathLike | None = None, server: str | None = None,
                 token: str | None = None, at: int | str | datetime | None = None) -> Any:
    """The intake catalog of every site, nested by folder: ``cat[site]`` lists a site's
    folders, series and entries; ``cat[site][name]`` is an entry (any full name works),
    ``cat[site].sondes(date="2020-02-01")`` a day of a series as one dataset.

    Only the list of sites is read here; each folder is read when first opened. With
    ``at`` (a seq of each site's log, or a time: ISO 8601 or a ``datetime``) it is the
    catalog of that point: the entries listed then, read as they were then, so a
    notebook pinned so gives the same results however the data is republished later.
    """
    require("intake", "science", "opening a catalog")
    require("intake_xarray", "science", "opening a catalog")
    from .jupyter import register_catalog_repr
    from .nested import open_nested

    register_catalog_repr()  # HTML in notebooks; does nothing elsewhere
    target = _target(store, server, token)
    return open_nested(target if at is None else Pinned(target, parse_at(at)))


def prefetch(topics: str | Sequence[str] = (), sites: Sequence[str] | None = None,
             names: Sequence[str] = (), *, server: str | None = None, token: str | None = None,
             store: PathLike | None = None, wait: bool = True, progress: bool | None = None) -> Any:
    """Make this site hold every entry of ``topics`` (of ``sites``, or all), now and as
    new ones appear; with ``wait``, return when what exists now is held here."""
    target = _target(store, server, token)
    return target.prefetch(check_topics(topics), list(sites or []), list(names), wait=wait,
                           progress=progress)


def prefetch_rules(*, server: str | None = None, token: str | None = None,
                   store: PathLike | None = None) -> list[dict[str, Any]]:
    """The site server's prefetch rules: ``id``, ``topics``, ``sites``, ``names``, and how
    much of what each selects is held (``entries``, ``complete``, ``objects_held``,
    ``objects_needed``, ``bytes_missing``)."""
    return _target(store, server, token).prefetch_rules()


def unprefetch(rule: int | Mapping[str, Any], *, server: str | None = None, token: str | None = None,
               store: PathLike | None = None) -> None:
    """Remove a prefetch rule (its ``id``, or the rule as :func:`prefetch` or
    :func:`prefetch_rules` return it): nothing more is fetched for it; what is held
    stays until evicted. Needs a write token; :class:`NotFound` for an unknown rule."""
    rule_id = rule["id"] if isinstance(rule, Mapping) else rule
    _target(store, server, token).unprefetch(int(rule_id))


def browse(*, server: str | None = None, token: str | None = None,
           store: PathLike | None = None, confirm_above: int | str = "100MB") -> Any:
    """A catalog browser widget for JupyterLab. A prefetch click that would bring more
    than ``confirm_above`` (bytes, or ``"1GB"``) here shows the size and asks first."""
    require("anywidget", "jupyter", "the catalog browser")
    from .jupyter.browser import CatalogBrowser
    from .settings import size_setting

    return CatalogBrowser(_target(store, server, token), confirm_above=size_setting(confirm_above, "confirm_above"))
