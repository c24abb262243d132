"""Does every entry open? ``eurec4a-nt check`` opens entries the way a user would and
says what fails and why: for a weekly job that keeps a campaign's data usable.

netCDF and zarr entries are opened with xarray through the catalog and every variable
is read (in full up to :data:`FULL_READ_BYTES`, else its first element); every other
file entry is read in full and its size compared with the catalog's; folder entries
have each of their files read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
    """Open one catalog entry as a user would; return what was read.

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
    if meta.get("kind") == "file":
        data = source.read()
        if len(data) != meta.get("size"):
            raise ValueError(f"read {len(data)} bytes; the catalog says {meta.get('size')}")
        return f"{len(data)} bytes"
    fs, total = source.fs, 0
    files = fs.find(source.urlpath)
    for path in files:
        total += len(fs.cat_file(path))
    return f"{len(files)} files, {total} bytes"


def select(catalog: Any, sites: Sequence[str], topics: Sequence[str], sample: int | None,
           seed: int = 0) -> Iterator[tuple[str, Any]]:
    """``(SITE/NAME, source)`` of the entries to check: all, or ``sample`` per topic
    (chosen at random with ``seed``, so a run can be repeated)."""
    chosen: list[tuple[str, Any]] = []
    for site in sites or list(catalog):
        site_cat = catalog[site]
        for name in site_cat:
            source = site_cat[name]
            entry_topics = source.metadata.get("topics") or []
            if not topics or set(topics) & set(entry_topics):
                chosen.append((f"{site}/{name}", source))
    if sample is None:
        yield from chosen
        return
    by_topic: dict[str, list[tuple[str, Any]]] = {}
    for item in chosen:
        by_topic.setdefault((item[1].metadata.get("topics") or ["-"])[0], []).append(item)
    rng = random.Random(seed)
    for _, items in sorted(by_topic.items()):
        yield from rng.sample(items, min(sample, len(items)))


def check(catalog: Any, sites: Sequence[str] = (), topics: Sequence[str] = (),
          sample: int | None = None, seed: int = 0) -> Iterator[Checked]:
    """Open each selected entry of ``catalog`` (an intake catalog of sites) and yield the
    outcome; one failure never stops the others."""
    for path, source in select(catalog, sites, topics, sample, seed):
        start = time.monotonic()
        try:
            ok, detail = True, open_entry(source)
        except Exception as exc:  # noqa: BLE001 - any failure is what we report
            ok, detail = False, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        yield Checked(path, source.metadata.get("format", "?"), ok, detail, time.monotonic() - start)
