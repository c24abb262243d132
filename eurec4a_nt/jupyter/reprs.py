"""HTML reprs for notebooks: catalogs (all sites, one site), entries, publish results.

In the spirit of xarray's repr: one summary line, details in ``<details>`` sections.
Every text that comes from data (names, descriptions, metadata) is HTML-escaped. The
styles use JupyterLab's CSS variables with fallbacks, so they read in light and dark
themes, and in other front ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ..catalog import RESERVED_METADATA, TOP_METADATA
from ..formats import XARRAY_FORMATS
from ..sizes import human_size

#: Entries listed per site at most; the summary says how many there are.
MAX_ENTRIES = 50

_CSS = """
.nt-repr { --nt-fg: var(--jp-content-font-color0, rgba(0, 0, 0, 0.87));
  --nt-muted: var(--jp-content-font-color2, rgba(0, 0, 0, 0.54));
  --nt-line: var(--jp-border-color2, #e0e0e0); --nt-tag: var(--jp-layout-color2, #eeeeee);
  --nt-accent: var(--jp-brand-color1, #1976d2);
  color: var(--nt-fg); font: var(--jp-content-font-size1, 13px)/1.45
  var(--jp-ui-font-family, system-ui, sans-serif); max-width: 60rem; }
html[theme=dark] .nt-repr, html[data-theme=dark] .nt-repr, body[data-theme=dark] .nt-repr,
body.vscode-dark .nt-repr { --nt-fg: var(--jp-content-font-color0, rgba(255, 255, 255, 0.9));
  --nt-muted: var(--jp-content-font-color2, rgba(255, 255, 255, 0.6));
  --nt-line: var(--jp-border-color2, #444); --nt-tag: var(--jp-layout-color2, #333); }
.nt-repr .nt-head { font-weight: 600; }
.nt-repr .nt-type { color: var(--nt-muted); font-weight: 400; margin-right: .4em; }
.nt-repr .nt-muted { color: var(--nt-muted); font-weight: 400; }
.nt-repr summary { cursor: pointer; padding: .1rem 0; }
.nt-repr details > div { margin-left: 1.1rem; }
/* Beat JupyterLab's table and pre styles for rendered HTML (right-aligned, striped). */
.nt-repr .nt-table { border-collapse: collapse; margin: .2rem 0; table-layout: auto;
  font-size: inherit; color: var(--nt-fg); }
.nt-repr .nt-table tr:nth-child(n) { background: transparent; }
.nt-repr .nt-table th, .nt-repr .nt-table td { text-align: left; padding: .1rem .6rem .1rem 0;
  border: none; border-bottom: 1px solid var(--nt-line); vertical-align: top; line-height: 1.45;
  color: var(--nt-fg); }
.nt-repr .nt-table th { color: var(--nt-muted); font-weight: 400; }
.nt-repr .nt-table td.nt-num { text-align: right; font-variant-numeric: tabular-nums; }
.nt-repr .nt-tag { display: inline-block; padding: 0 .4em; margin-right: .2em;
  border-radius: .6em; background: var(--nt-tag); font-size: 90%; }
.nt-repr .nt-code { font-family: var(--jp-code-font-family, monospace); font-size: 90%;
  margin: .2rem 0; padding: .3rem .5rem; background: var(--nt-tag);
  color: var(--nt-fg); white-space: pre-wrap; border: none; }
.nt-repr details > .nt-table, .nt-repr details > .nt-code { margin-left: 1.1rem; }
"""


def open_code(site: str, name: str, format: str, kind: str = "file") -> str:
    """The Python line that opens an entry from ``cat = nt.open_catalog(...)``."""
    ref = f"cat[{json.dumps(site)}][{json.dumps(name)}]"
    if format in XARRAY_FORMATS:
        return f"ds = {ref}.to_dask()"
    if kind == "file":
        return f"data = {ref}.read()"
    return f"path = {ref}.local_path()"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _box(body: str) -> str:
    return f'<div class="nt-repr"><style>{_CSS}</style>{body}</div>'


def _tags(topics: Iterable[str]) -> str:
    return "".join(f'<span class="nt-tag">{escape(t)}</span>' for t in topics)


def _short_time(published: str) -> str:
    return published.replace("T", " ")[:19]


def _entry_rows(entries: Sequence[Mapping[str, Any]]) -> str:
    """A table of entries given as catalog metadata (site, name, format, size, ...)."""
    shown = sorted(entries, key=lambda e: str(e.get("published", "")), reverse=True)
    rows = [
        f"<tr><td>{escape(str(e.get('name', '')))}"
        + (f'<div class="nt-muted">{escape(e["description"])}</div>' if e.get("description") else "")
        + f"</td><td>{_tags(e.get('topics') or ())}</td><td>{escape(str(e.get('format', '')))}</td>"
        f"<td class=\"nt-num\">{human_size(int(e.get('size') or 0))}</td>"
        f"<td>{escape(_short_time(str(e.get('published', ''))))}</td></tr>"
        for e in shown[:MAX_ENTRIES]
    ]
    more = len(shown) - MAX_ENTRIES
    tail = f'<div class="nt-muted">… {more} more</div>' if more > 0 else ""
    if not rows:
        return '<div class="nt-muted">no entries</div>'
    return ('<table class="nt-table"><tr><th>name</th><th>topics</th><th>format</th><th>size</th>'
            "<th>published</th></tr>" + "".join(rows) + "</table>" + tail)


def _entry_body(site: str, name: str, kind: str, format: str, size: int, topics: Sequence[str],
                published: str, description: str, root: str, metadata: Mapping[str, Any],
                opened_with: str = "") -> str:
    head = (f'<div class="nt-head"><span class="nt-type">eurec4a_nt entry</span>'
            f"{escape(site or '?')} / {escape(name)}</div>"
            f'<div>{escape(format)} · {human_size(size)} · {_tags(topics)}'
            f'<span class="nt-muted">published {escape(_short_time(published) or "-")}</span></div>')
    if description:
        head += f"<div>{escape(description)}</div>"
    facts = {"kind": kind, "root": root, **{k: json.dumps(v, default=str) for k, v in metadata.items()}}
    table = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in facts.items())
    code = f"import eurec4a_nt as nt\ncat = nt.open_catalog({opened_with})\n{open_code(site, name, format, kind)}"
    return (head + f'<details><summary>details</summary><table class="nt-table">{table}</table></details>'
            f'<details><summary>open</summary><pre class="nt-code">{escape(code)}</pre></details>')


def _entry_of(entry: Any) -> str:
    return _entry_body(entry.site, entry.name, entry.kind, entry.format, entry.size, entry.topics,
                       entry.published, entry.description, str(entry.root), entry.metadata,
                       getattr(entry, "opened_with", ""))


def entry_html(entry: Any) -> str:
    """An :class:`~eurec4a_nt.entries.Entry` (also what ``publish`` returns)."""
    return _box(_entry_of(entry))


def entries_html(entries: Sequence[Any]) -> str:
    """Several entries published together: a count, then each entry collapsed."""
    total = sum(e.size for e in entries)
    items = "".join(f"<details><summary>{escape(e.site)} / {escape(e.name)}</summary>"
                    f"{_entry_of(e)}</details>" for e in entries)
    return _box(f'<div class="nt-head"><span class="nt-type">eurec4a_nt entries</span>'
                f"{_count(len(entries), 'entry', 'entries')} published, {human_size(total)}</div>{items}")


def source_html(source: Any) -> str:
    """An entry opened from the catalog (``cat[site][name]``, an ``EntrySource``)."""
    md = dict(source.metadata)
    own = {k: md.pop(k, None) for k in RESERVED_METADATA}
    md.pop("catalog_dir", None)
    return _box(_entry_body(str(own["site"] or ""), str(own["name"] or ""), str(own["kind"] or source.kind),
                            str(own["format"] or source.format), int(own["size"] or 0),
                            list(own["topics"] or ()), str(own["published"] or ""),
                            source.description or "", str(own["root"] or ""), md,
                            _where(getattr(source, "storage_options", {}))))


def _where(options: Mapping[str, Any]) -> str:
    """``server="URL"`` or ``store="PATH"`` of an entry's storage options (no token)."""
    for key in ("server", "store"):
        if options.get(key):
            return f"{key}={json.dumps(str(options[key]))}"
    return ""


def _site_summary(site: str, info: Mapping[str, Any]) -> str:
    own = ' <span class="nt-tag">this site</span>' if info.get("own") else ""
    when = f' · last commit {escape(_short_time(str(info["time"])))}' if info.get("time") else ""
    entries = _count(int(info.get("entries") or 0), "entry", "entries")
    return f'<b>{escape(site)}</b>{own} <span class="nt-muted">{entries}{when}</span>'


def site_catalog_html(site: str, info: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> str:
    """One site's catalog: its summary and its entries, newest first."""
    return _box(f'<div class="nt-head"><span class="nt-type">eurec4a_nt catalog</span>'
                f"{_site_summary(site, info)}</div>{_entry_rows(entries)}")


def top_catalog_html(sites: Mapping[str, tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> str:
    """The catalog of all sites: one collapsed section per site with its entries."""
    total = sum(int(info.get("entries") or 0) for info, _ in sites.values())
    sections = "".join(f"<details><summary>{_site_summary(site, info)}</summary>{_entry_rows(entries)}</details>"
                       for site, (info, entries) in sites.items())
    sections = sections or '<div class="nt-muted">no sites</div>'
    return _box(f'<div class="nt-head"><span class="nt-type">eurec4a_nt catalog</span>'
                f"{_count(len(sites), 'site', 'sites')}, {_count(total, 'entry', 'entries')}</div>{sections}")


#: The drivers of what a eurec4a-nt catalog holds: entries, folders, series.
_DRIVERS = ("eurec4a_nt", "eurec4a_nt_folder", "eurec4a_nt_series")


def _described(cat: Any) -> list[dict[str, Any]]:
    """What an intake catalog holds, as rows: entries with their metadata, folders and
    series with what they hold."""
    out = []
    for key, entry in cat.walk(depth=1).items():
        body = entry.describe()
        md = dict(body.get("metadata") or {})
        series = md.get("series")
        if "folder" in md:
            md = {"name": f"{key}/", "format": "folder", "size": 0}
        elif isinstance(series, dict):
            md = {"name": key, "format": f"series of {series.get('format')}", "size": 0,
                  "published": series.get("last", "")}
        out.append({**md, "description": body.get("description") or "", "driver": body.get("driver")})
    return out


def _site_html(cat: Any) -> str | None:
    info = cat.metadata or {}
    entries = _described(cat)
    drivers = {d for e in entries for d in (e["driver"] if isinstance(e["driver"], list) else [e["driver"]])}
    if "site" not in info or not drivers <= set(_DRIVERS):
        return None
    return site_catalog_html(str(info["site"]), {"entries": len(entries), **info}, entries)


def catalog_html(cat: Any) -> str | None:
    """A eurec4a-nt intake catalog (all sites, or one site); None for any other catalog."""
    if (cat.metadata or {}).get("description") != TOP_METADATA["description"]:
        return _site_html(cat)
    sites = {}
    for name in cat:
        site = cat[name]
        sites[name] = ({"entries": 0, **(site.metadata or {})}, _described(site))
    return top_catalog_html(sites)
