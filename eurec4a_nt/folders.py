"""What a folder of a site holds: its sub-folders, its series products and its other
entries, made from the names under it.

Products come from the site's product map when it has one (see
:mod:`eurec4a_nt.products`), else from the timestamps in names (see
:mod:`eurec4a_nt.series`). A folder is made the same way from a site's index in
memory (:class:`IndexNames`) and from the summaries in its log state (see
:mod:`eurec4a_nt.summaries`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .entries import Entry
from .errors import NotFound
from .products import name_pattern
from .series import DEFAULT_DIM, Product, Stamp, product_key, stamp_of, template_at

if TYPE_CHECKING:
    from .listing import SiteIndex
    from .settings import ProductRule


@dataclass(frozen=True)
class Folder:
    """What one folder (a name prefix ending in ``/``, or ``""``) of a site holds: its
    sub-folders with the number of entries below each, the series products in it, and
    the entries directly in it that belong to no series."""

    site: str
    prefix: str
    folders: dict[str, int] = field(default_factory=dict)
    products: list[Product] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


class Span(NamedTuple):
    """The names of one series: the first and last time they say (ISO 8601), the first
    and last of them in name order."""

    first: str
    last: str
    low: str
    high: str


class Names(Protocol):
    """A site's names as :func:`make_folder` reads them, one folder (``prefix``) at a time."""

    site: str

    def groups(self, prefix: str) -> dict[str, int]:
        """How many names directly in ``prefix`` have each template ("": no timestamp)."""

    def sub_folders(self, prefix: str) -> dict[str, int]:
        """The sub-folders of ``prefix`` in name order, with the number of entries below each."""

    def span(self, prefix: str, template: str) -> Span:
        """The span of the names of ``template`` directly in ``prefix``."""

    def entries(self, prefix: str, template: str) -> list[Entry]:
        """The entries of the names of ``template`` directly in ``prefix``, in name order."""

    def entry(self, name: str) -> Entry:
        """The entry ``name``."""


def make_folder(names: Names, prefix: str) -> Folder:
    """The folder ``prefix`` of ``names``' site (empty if it holds nothing), for a site
    without a product map."""
    groups = names.groups(prefix)
    folders, products = {}, []
    entries = [entry for template, count in groups.items() if count == 1 or not template
               for entry in names.entries(prefix, template)]
    for sub, count in names.sub_folders(prefix).items():  # one holding a series and nothing else is that series
        sole = _sole_series(names, f"{prefix}{sub}/")
        if sole is None:
            folders[sub] = count
        else:
            products.append(replace(sole, key=sub))
    series = [(names.span(prefix, template), template) for template, count in groups.items() if template and count > 1]
    for span, template in sorted(series, key=lambda s: s[0].low):  # keys taken in the order of the names
        key = product_key(template) or "series"
        while key in folders or any(p.key == key for p in products):
            key += "_series"
        products.append(_product(names.site, key, groups[template], span, names.entry(span.high), template))
    return Folder(names.site, prefix, folders, sorted(products, key=lambda p: p.key),
                  sorted(entries, key=lambda e: e.name))


def _sole_series(names: Names, prefix: str) -> Product | None:
    """The one series the folder ``prefix`` holds if it holds nothing else (no entry, no
    other series or sub-folder; a sub-folder that is itself such a series counts as
    one), else None."""
    groups, subs = names.groups(prefix), names.sub_folders(prefix)
    if len(groups) + len(subs) != 1 or "" in groups or 1 in groups.values():
        return None
    if subs:
        return _sole_series(names, f"{prefix}{next(iter(subs))}/")
    ((template, count),) = groups.items()
    span = names.span(prefix, template)
    return _product(names.site, "", count, span, names.entry(span.high), template)


def non_empty(found: Folder) -> Folder:
    """``found``; :class:`NotFound` if it holds nothing and is not the top folder."""
    if found.prefix and not (found.folders or found.products or found.entries):
        raise NotFound(f"{found.site} has no folder {found.prefix.rstrip('/')!r}")
    return found


def find_product(site: str, path: str, folder: Callable[[str], Folder]) -> Product:
    """The product ``FOLDER/KEY`` (or ``KEY`` in the top folder) of ``site``, whose
    folders ``folder`` makes; NotFound if none."""
    parent, _, key = path.rpartition("/")
    for product in folder(parent + "/" if parent else "").products:
        if product.key == key:
            return product
    raise NotFound(f"{site} has no series {path!r}")


class IndexNames:
    """The names of a :class:`~eurec4a_nt.listing.SiteIndex` as :func:`make_folder`
    reads them; each folder's direct names are grouped once."""

    def __init__(self, index: SiteIndex) -> None:
        self.index, self.site = index, index.site
        self._direct: dict[str, tuple[dict[str, list[tuple[str, Stamp | None]]], list[str]]] = {}

    def _children(self, prefix: str) -> tuple[dict[str, list[tuple[str, Stamp | None]]], list[str]]:
        found = self._direct.get(prefix)
        if found is None:
            files, subs = self.index.children(prefix)
            groups: dict[str, list[tuple[str, Stamp | None]]] = {}
            for name in (prefix + file for file in files):
                stamp = stamp_of(name)
                groups.setdefault("" if stamp is None else template_at(name, stamp), []).append((name, stamp))
            found = self._direct[prefix] = groups, subs
        return found

    def groups(self, prefix: str) -> dict[str, int]:
        return {template: len(group) for template, group in self._children(prefix)[0].items()}

    def sub_folders(self, prefix: str) -> dict[str, int]:
        return {sub: self.index.count(f"{prefix}{sub}/") for sub in self._children(prefix)[1]}

    def span(self, prefix: str, template: str) -> Span:
        group = self._children(prefix)[0][template]
        times = [stamp.time for _, stamp in group if stamp]
        return Span(min(times).isoformat(), max(times).isoformat(), group[0][0], group[-1][0])

    def entries(self, prefix: str, template: str) -> list[Entry]:
        return [self.index.entries[name] for name, _ in self._children(prefix)[0][template]]

    def entry(self, name: str) -> Entry:
        return self.index.entries[name]


def mapped_folder(index: SiteIndex, prefix: str) -> Folder:
    """The folder ``prefix`` of a site with a product map: its products (each with an
    entry) in the top folder, where they hide a sub-folder of the same name and take
    the entries directly there that they hold; no products by timestamps."""
    folders: dict[str, int] = {}
    entries: list[Entry] = []
    for name in index.names_under(prefix):
        sub, slash, _ = name[len(prefix):].partition("/")
        if slash:
            folders[sub] = folders.get(sub, 0) + 1
        else:
            entries.append(index.entries[name])
    if prefix:
        return Folder(index.site, prefix, folders, [], entries)
    products = []
    for key, rule in sorted(index.products.items()):
        pattern = name_pattern(rule.pattern)
        found = [n for n in index.names_under(pattern.head) if pattern.time_of(n) is not None]
        if found:
            times = [t for t in map(pattern.time_of, found) if t]
            span = Span(min(times).isoformat(), max(times).isoformat(), found[0], found[-1])
            products.append(_product(index.site, key, len(found), span, index.entries[found[-1]], rule=rule))
            folders.pop(key, None)
            entries = [e for e in entries if pattern.time_of(e.name) is None]
    return Folder(index.site, prefix, folders, products, entries)


def _product(site: str, key: str, count: int, span: Span, newest: Entry, template: str = "",
             rule: ProductRule | None = None) -> Product:
    """The product ``key`` of ``count`` entries over ``span``, ``newest`` the last by
    name: of the names of ``template``, or those the ``rule`` of the product map matches."""
    stamp = stamp_of(span.high) if template else None
    return Product(site=site, key=key, template=template, format=newest.format, count=count,
                   first=span.first, last=span.last, compact=bool(stamp and stamp.compact),
                   series_dim=str(newest.metadata.get("series_dim") or DEFAULT_DIM),
                   pattern=rule.pattern if rule else "", description=rule.description if rule else "")
