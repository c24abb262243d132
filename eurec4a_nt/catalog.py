"""Intake catalogs generated from site states.

The top catalog has one nested catalog per site; a site catalog has one source per
entry, keyed by the entry's name, using the ``eurec4a_nt`` driver (see
:mod:`eurec4a_nt.sources`). The YAML is plain intake v1 syntax, so
``intake.open_catalog(path_or_url)`` opens it wherever ``eurec4a_nt`` is installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .entries import Entry

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


def site_catalog(site: str, entries: Mapping[str, Entry], storage_options: dict[str, str],
                 description: str = "") -> dict[str, Any]:
    """The catalog of one site's entries."""
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


def top_catalog(sites: Mapping[str, dict[str, Any]], site_path: str) -> dict[str, Any]:
    """The catalog of all sites; ``site_path`` is a template with ``{site}``."""
    sources = {}
    for site, info in sorted(sites.items()):
        sources[site] = {
            "driver": "yaml_file_cat",
            "description": f"{site}: {info.get('entries', 0)} entries",
            "args": {"path": site_path.format(site=site)},
            "metadata": {"site": site, **info},
        }
    return {"metadata": {"description": "eurec4a-nt: all sites"}, "sources": sources}


def dump(body: dict[str, Any]) -> str:
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
