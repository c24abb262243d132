"""Catalogs at campaign scale: one site server holding 10,000 and 30,000 entries (names
like a campaign's: soundings, quicklooks of a dozen instruments every few minutes,
radar days, reports), measured as a reader meets it; the section "Catalogs at scale"
of ``bench/results.md`` is rewritten with the figures and a straight-line
extrapolation to 100,000 entries from the two measured sizes.

    python -m bench.catalogs                   # 10k and 30k entries (a few minutes)
    python -m bench.catalogs --sizes 1000 3000 # quicker

Then a flat folder of 10,000 entries, as plain intake and ``open_catalog`` walk down to
one of them. After each size's figures, the server is restarted on the same store and
port, with the log unchanged and with one commit made while it was down.

The entries are written as signed commits of 1,000 changes naming objects that are
not stored: catalogs, searches and pages read only the site log, never the data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore

from .common import HERE, Sampler, machine

SITE = "RV-Meteor"
INSTRUMENTS = ["ceilometer", "cloud-radar", "wind-lidar", "mrr", "microwave", "sky-camera",
               "disdrometer", "radiometer", "sun-photometer", "surface-met", "aerosol", "lidar"]
SECTION = "## Catalogs at scale"
#: The reader's side: open the catalog and list the site's top folder, in a fresh process.
_OPEN = """
import json, sys, time
t0 = time.perf_counter()
import eurec4a_nt as nt
import eurec4a_nt.client, eurec4a_nt.nested, intake, intake_xarray, xarray
t1 = time.perf_counter()
cat = nt.open_catalog(server=sys.argv[1])
t2 = time.perf_counter()
top = list(cat[sys.argv[2]])
t3 = time.perf_counter()
day = cat[sys.argv[2]].sondes(date=sys.argv[3]).entries()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "site": t3 - t2, "series_day": t4 - t3,
                  "keys": len(top), "day": len(day)}))
"""
_PLAIN = """
import json, sys, time
import intake
t0 = time.perf_counter()
cat = intake.open_catalog(sys.argv[1] + "/catalog.yaml")
keys = list(cat[sys.argv[2]])
print(json.dumps({"open": time.perf_counter() - t0, "keys": len(keys)}))
"""

#: Plain intake down to one entry of a flat folder (into the part holding it, if the
#: folder is listed in parts), and that entry opened.
_FLAT = """
import json, sys, time
import intake, intake_xarray, xarray
t0 = time.perf_counter()
folder = intake.open_catalog(sys.argv[1] + "/catalog.yaml")[sys.argv[2]]["photos"]
name = sys.argv[3]
while name not in folder._entries:
    folder = folder[next(k for k, e in folder._entries.items()
                         if e.describe()["metadata"]["first"] <= name <= e.describe()["metadata"]["last"])]
source = folder[name]
t1 = time.perf_counter()
ds = source.to_dask()
print(json.dumps({"walk": t1 - t0, "open": time.perf_counter() - t0, "vars": len(ds.data_vars)}))
"""
_FLAT_OURS = """
import json, sys, time
import eurec4a_nt as nt
import eurec4a_nt.client, eurec4a_nt.nested, intake, intake_xarray, xarray
t0 = time.perf_counter()
source = nt.open_catalog(server=sys.argv[1])[sys.argv[2]]["photos"][sys.argv[3].split("/")[-1]]
t1 = time.perf_counter()
ds = source.to_dask()
print(json.dumps({"walk": t1 - t0, "open": time.perf_counter() - t0, "vars": len(ds.data_vars)}))
"""
#: The entries of the flat folder, and the one of them that is a real netCDF file.
FLAT = 10_000
FLAT_ENTRY = "photos/IMG_07777.nc"


def names(n: int) -> list[tuple[str, str]]:
    """``n`` entry names (and topics) as a campaign's six weeks would make them."""
    start = datetime(2020, 1, 10)
    out = []
    for i in range(n):
        kind = i % 10
        when = start + timedelta(minutes=5 * (i // 10))
        stamp = when.strftime("%Y-%m-%dT%H%M")
        if kind < 6:
            out.append((f"quicklooks/{INSTRUMENTS[i % len(INSTRUMENTS)]}/{stamp}.png", "quicklook"))
        elif kind < 9:
            out.append((f"sondes/{stamp}.nc", "sondes"))
        else:
            out.append((f"radar/LIMRAD94_{when:%Y%m%d_%H%M}.nc", "radar"))
    return out


def make_store(root: Path, n: int, site: str = SITE) -> SiteStore:
    """A store of ``site`` (made if missing) whose log holds ``n`` entries, committed
    1,000 at a time."""
    store = SiteStore(root / site) if (root / site).exists() else SiteStore.init(root / site, site)
    batch: list[Change] = []
    for i, (name, topic) in enumerate(names(n)):
        fmt = "png" if name.endswith(".png") else "netcdf"
        entry = Entry(name=name, kind="file", root=ObjectId.of(name.encode()), size=4096 + i % 997,
                      format=fmt, topics=(topic,), published=f"2026-01-01T00:00:{i % 60:02d}.000Z")
        batch.append(Change("put", name, entry))
        if len(batch) == 1000:
            store.commit(batch)
            batch = []
    if batch:
        store.commit(batch)
    return store


class HealthProbe(Sampler):
    """``/health`` asked every 20 ms in a thread; :attr:`peak` is the slowest answer (s)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._session = requests.Session()

    def sample(self) -> float:
        start = time.perf_counter()
        self._session.get(self.url + "/health", timeout=30)
        return time.perf_counter() - start


def timed_get(url: str, headers: dict[str, str] | None = None) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = requests.get(url, headers=headers or {}, timeout=300)
    response.raise_for_status()
    return time.perf_counter() - start, response


def rss(pid: int) -> int:
    """Resident memory of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(n: int, workdir: Path) -> dict[str, float]:
    """Every figure for one size."""
    root = workdir / f"n{n}"
    started = time.perf_counter()
    make_store(root, n)
    figures: dict[str, float] = {"make store (s)": time.perf_counter() - started}
    server = SiteProcess(root / SITE, log=root / "server.log").start(timeout=300)
    try:
        url = server.url
        with HealthProbe(url) as probe:
            figures["site catalog, first request (s)"], first = timed_get(f"{url}/sites/{SITE}/catalog.yaml")
        figures["/health slowest meanwhile (ms)"] = probe.peak * 1000
        with HealthProbe(url) as probe:
            warm = [timed_get(f"{url}/sites/{SITE}/quicklooks/catalog.yaml")[0] for _ in range(5)]
            figures["folder catalog, warm (ms)"] = statistics.median(warm) * 1000
            etag = {"If-None-Match": first.headers["ETag"]}
            figures["unchanged catalog, 304 (ms)"] = statistics.median(
                timed_get(f"{url}/sites/{SITE}/catalog.yaml", etag)[0] for _ in range(5)) * 1000
            figures["entries page of 100 (ms)"] = statistics.median(
                timed_get(f"{url}/api/sites/{SITE}/entries?limit=100&after=quicklooks/m")[0]
                for _ in range(5)) * 1000
            figures["search q= over all (ms)"] = statistics.median(
                timed_get(f"{url}/api/sites/{SITE}/entries?q=lidar&limit=100&n={i}")[0]
                for i in range(3)) * 1000
            name = names(n)[0][0]
            figures["an entry's versions (ms)"] = statistics.median(
                timed_get(f"{url}/api/sites/{SITE}/versions/{name}")[0] for _ in range(5)) * 1000
            figures["newest page (ms)"] = statistics.median(
                timed_get(f"{url}/api/sites/{SITE}/entries?order=newest&limit=100")[0] for _ in range(5)) * 1000
        figures["/health slowest meanwhile, warm (ms)"] = probe.peak * 1000
        with HealthProbe(url) as probe:
            late = []
            for i in range(3):  # a quicklook arrives, a reader asks for the site's catalog
                extra = Entry(name=f"quicklooks/lidar/2020-03-01T00{i}0.png", kind="file", root=ObjectId.of(b"%d" % i),
                              size=4096, format="png", topics=("quicklook",), published="2026-01-02T00:00:00.000Z")
                SiteStore(root / SITE).commit([Change("put", extra.name, extra)])
                late.append(timed_get(f"{url}/sites/{SITE}/catalog.yaml")[0])
        figures["site catalog after one more commit (ms)"] = statistics.median(late) * 1000
        figures["/health slowest meanwhile, commits (ms)"] = probe.peak * 1000
        figures["site catalog bytes"] = len(first.content)
        runs = [_python(workdir, _OPEN, url, SITE, "2020-01-10") for _ in range(3)]
        opened = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        figures["open_catalog(server=) (s)"] = opened["open"]
        figures["open + list the site (s)"] = opened["open"] + opened["site"]
        figures["a day of a series, its entries (s)"] = opened["series_day"]
        figures["imports: eurec4a_nt, its HTTP client, intake, xarray (s)"] = opened["import"]
        figures["plain intake: open + list the site (s)"] = statistics.median(
            _python(workdir, _PLAIN, url, SITE)["open"] for _ in range(3))
        figures["server RSS (MB)"] = rss(server.proc.pid) / 1e6 if server.proc else 0.0
    finally:
        server.stop()
    figures |= after_restart(root, workdir, server.port)
    return figures


def after_restart(root: Path, workdir: Path, port: int) -> dict[str, float]:
    """The first requests after the server restarts on the same store and port: with the
    log as it was (the catalogs it answered before are kept), and with one commit made
    while it was down (the site's index and the catalog are built again)."""
    figures: dict[str, float] = {}
    for case in ("log unchanged", "a commit made meanwhile"):
        if case != "log unchanged":
            extra = Entry(name="reports/late.md", kind="file", root=ObjectId.of(b"late"), size=10, format="md",
                          published="2026-01-02T00:00:00.000Z")
            SiteStore(root / SITE).commit([Change("put", extra.name, extra)])
        server = SiteProcess(root / SITE, port=port, log=root / "server.log").start(timeout=300)
        try:
            with HealthProbe(server.url) as probe:
                figures[f"after a restart, {case}: site catalog, first request (s)"] = timed_get(
                    f"{server.url}/sites/{SITE}/catalog.yaml")[0]
                opened = _python(workdir, _OPEN, server.url, SITE, "2020-01-10")
            figures[f"after a restart, {case}: /health slowest meanwhile (ms)"] = probe.peak * 1000
            figures[f"after a restart, {case}: open_catalog(server=) + list the site (s)"] = (
                opened["open"] + opened["site"])
        finally:
            server.stop()
    return figures


def flat_folder(workdir: Path) -> dict[str, float]:
    """A folder of :data:`FLAT` entries without timestamps, one of them a netCDF file:
    plain intake and ``open_catalog`` from the top catalog down to that entry, opened."""
    from eurec4a_nt.api import publish
    from eurec4a_nt.demokit import sampledata

    root = workdir / "flat"
    store = SiteStore.init(root / SITE, SITE)
    fake = [Entry(name=f"photos/IMG_{i:05d}.png", kind="file", root=ObjectId.of(b"%d" % i), size=4096,
                  format="png", topics=("photos",)) for i in range(FLAT - 1)]
    for start in range(0, len(fake), 1000):
        store.commit([Change("put", e.name, e) for e in fake[start:start + 1000]])
    publish(sampledata.sonde(root / "sonde.nc", seed=1), FLAT_ENTRY, store=store.path, progress=False)
    server = SiteProcess(root / SITE, log=root / "server.log").start(timeout=300)
    try:
        timed_get(f"{server.url}/sites/{SITE}/photos/catalog.yaml")  # built once, as for any reader
        plain = [_python(workdir, _FLAT, server.url, SITE, FLAT_ENTRY.split("/")[-1]) for _ in range(3)]
        ours = [_python(workdir, _FLAT_OURS, server.url, SITE, FLAT_ENTRY) for _ in range(3)]
        size = len(timed_get(f"{server.url}/sites/{SITE}/photos/catalog.yaml")[1].content)
    finally:
        server.stop()
    return {"plain intake: top catalog down to the entry (s)": statistics.median(r["walk"] for r in plain),
            "plain intake: ... and the entry opened, `.to_dask()` (s)": statistics.median(r["open"] for r in plain),
            "open_catalog: down to the entry (s)": statistics.median(r["walk"] for r in ours),
            "open_catalog: ... and the entry opened, `.to_dask()` (s)": statistics.median(r["open"] for r in ours),
            "the folder's catalog (bytes)": size}


def _python(workdir: Path, code: str, *args: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; its last line of output, as JSON."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          check=False, cwd=workdir, env={**os.environ, "EUREC4A_NT_CACHE": str(workdir / "cache")})
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def report(sizes: list[int], results: dict[int, dict[str, float]]) -> list[str]:
    """The results section: one column per size, and the extrapolation to 100,000."""
    lo, hi = sizes[0], sizes[-1]
    guessed = hi < 100_000
    lines = [SECTION, "", f"One site server, entries named like a campaign's (60% quicklooks of "
             f"{len(INSTRUMENTS)} instruments, 30% soundings, 10% radar files; commits of 1,000). "
             + ("The last column is not measured: it extends the straight line through the two measured "
                "sizes to 100,000 entries (where a figure does not grow with the entries, that line "
                "only carries the noise of a shared 2-core machine). " if guessed else "")
             + "Reader figures are the median of 3 fresh processes; imports are the same at any size and "
             "not part of opening.", "",
             f"- command: `python -m bench.catalogs --sizes {' '.join(map(str, sizes))}`",
             *(line for line in machine()[:1]), "",
             "| figure | " + " | ".join(f"{n:,} entries" for n in sizes) + (" | 100,000 (extrapolated) |"
                                                                             if guessed else " |"),
             "|---|" + "---|" * (len(sizes) + guessed)]
    for key in results[lo]:
        a, b = results[lo][key], results[hi][key]
        slope = (b - a) / (hi - lo) if hi != lo else 0.0
        cells = [_fmt(results[n][key]) for n in sizes] + ([_fmt(max(b + slope * (100_000 - hi), 0.0))]
                                                          if guessed else [])
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def write_section(path: Path, lines: list[str]) -> None:
    """Replace the section whose title is ``lines[0]`` in ``path`` (or add it before
    "All figures")."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    body = "\n".join(lines) + "\n\n"
    title = lines[0]
    if title in text:
        start = text.index(title)
        end = text.find("\n## ", start + len(title))
        text = text[:start] + body + (text[end + 1:] if end >= 0 else "")
    elif "## All figures" in text:
        at = text.index("## All figures")
        text = text[:at] + body + text[at:]
    else:
        text += "\n" + body
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalogs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 30_000], metavar="N")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-catalogs-") as tmp:
        results = {n: measure(n, Path(tmp)) for n in sizes}
        flat = flat_folder(Path(tmp))
    lines = [*report(sizes, results), "",
             f"A flat folder of {FLAT:,} entries without timestamps (`photos/IMG_00000.png` ...), one a "
             "netCDF file; reader figures the median of 3 fresh processes (imports of the packages not counted):", "",
             "| figure | value |", "|---|---|", *(f"| {key} | {_fmt(value)} |" for key, value in flat.items())]
    write_section(args.out, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
