"""What a folder of a site holds: its sub-folders, its series products and its other
entries, made from the names under it.

Products come from the site's product map when it has one (see
:mod:`eurec4a_nt.products`), else from the timestamps in names (see
:mod:`eurec4a_nt.series`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .entries import Entry
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


def make_folder(index: SiteIndex, prefix: str) -> Folder:
    """The folder ``prefix`` of ``index``'s site (empty if it holds nothing)."""
    if index.products:
        return _mapped_folder(index, prefix)
    files, subs = index.children(prefix)
    direct: dict[str | None, list[tuple[str, Stamp | None]]] = {}  # by template: names, their stamps
    for name in (prefix + file for file in files):
        stamp = stamp_of(name)
        direct.setdefault(None if stamp is None else template_at(name, stamp), []).append((name, stamp))
    folders, products, entries = {}, [], [index.entries[n] for n, _ in direct.pop(None, [])]
    for sub in subs:  # a sub-folder holding one series and nothing else is that series
        inside = index.folder(f"{prefix}{sub}/")
        if not (inside.folders or inside.entries) and len(inside.products) == 1:
            products.append(replace(inside.products[0], key=sub))
        else:
            folders[sub] = index.count(f"{prefix}{sub}/")
    for template, group in direct.items():
        if len(group) == 1:
            entries.append(index.entries[group[0][0]])
            continue
        key = product_key(template or "") or "series"
        while key in folders or any(p.key == key for p in products):
            key += "_series"
        names, stamps = zip(*group, strict=True)
        products.append(_product(index, key, template or "", list(names), stamps=[s for s in stamps if s]))
    return Folder(index.site, prefix, folders, sorted(products, key=lambda p: p.key),
                  sorted(entries, key=lambda e: e.name))


def _mapped_folder(index: SiteIndex, prefix: str) -> Folder:
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
            products.append(_product(index, key, "", found, rule))
            folders.pop(key, None)
            entries = [e for e in entries if pattern.time_of(e.name) is None]
    return Folder(index.site, prefix, folders, products, entries)


def _product(index: SiteIndex, key: str, template: str, names: list[str],
             rule: ProductRule | None = None, stamps: Sequence[Stamp] = ()) -> Product:
    """The product ``key`` of the entries ``names`` (in name order): by ``template`` and
    the names' ``stamps``, or by the ``rule`` of the product map."""
    if rule is None:
        times, compact = [s.time for s in stamps], stamps[-1].compact
    else:
        times, compact = [t for t in map(name_pattern(rule.pattern).time_of, names) if t], False
    newest = index.entries[names[-1]]
    return Product(site=index.site, key=key, template=template, format=newest.format,
                   count=len(names), first=min(times).isoformat(), last=max(times).isoformat(),
                   compact=compact, series_dim=str(newest.metadata.get("series_dim") or DEFAULT_DIM),
                   pattern=rule.pattern if rule else "", description=rule.description if rule else "")
