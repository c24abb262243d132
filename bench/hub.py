"""A hub holding many sites' logs: ``--sites`` sites of ``--entries`` entries each (10 x
10,000 by default: 100,000 entries at one server), measured as a reader meets it. The
entries are named as in :mod:`bench.catalogs` (commits of 1,000 naming objects that are
not stored), each site's log signed by its own key and handed to the hub as a file, taken
into its state before the server starts, as a hub that received them holds them. The section "A hub of many sites" of
``bench/results.md`` is rewritten.

    python -m bench.hub                          # 10 sites x 10,000 entries
    python -m bench.hub --sites 4 --entries 2000 # quicker
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.sitestore import SiteStore

from .catalogs import _OPEN, HealthProbe, _python, make_store, rss, timed_get, write_section
from .common import HERE, machine

HUB = "OPS"
SECTION = "## A hub of many sites"


def make_hub(root: Path, sites: list[str], n: int) -> Path:
    """The hub's store, holding every site's log of ``n`` entries, taken into its state
    (checked and indexed) as a hub that received them over its links holds them."""
    make_sites(root, [*sites, HUB])
    for site in sites:
        make_store(root, n, site)
        shutil.copy(root / site / "logs" / f"{site}.jsonl", root / HUB / "logs" / f"{site}.jsonl")
    SiteStore(root / HUB).summary()
    return root / HUB


def _cli_seconds(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def measure(count: int, n: int, workdir: Path) -> dict[str, float]:
    """Every figure, first requests after the server started included."""
    sites = [f"SITE-{k:02d}" for k in range(count)]
    started = time.perf_counter()
    hub = make_hub(workdir, sites, n)
    figures: dict[str, float] = {"make the stores, the hub's state built (s)": time.perf_counter() - started}
    started = time.perf_counter()
    server = SiteProcess(hub, log=workdir / "hub.log").start(timeout=600)
    figures["server start, logs checked (s)"] = time.perf_counter() - started
    try:
        url, site = server.url, sites[-1]
        with HealthProbe(url) as probe:
            figures["/catalog.yaml, first request (ms)"] = timed_get(f"{url}/catalog.yaml")[0] * 1000
            firsts = [timed_get(f"{url}/sites/{s}/catalog.yaml") for s in sites]
            figures["a site's catalog, first request: median (ms)"] = statistics.median(t for t, _ in firsts) * 1000
            figures["a site's catalog, first request: slowest (ms)"] = max(t for t, _ in firsts) * 1000
        figures["/health slowest meanwhile (ms)"] = probe.peak * 1000
        with HealthProbe(url) as probe:
            etag = {"If-None-Match": firsts[-1][1].headers["ETag"]}
            figures["unchanged site catalog, 304 (ms)"] = statistics.median(
                timed_get(f"{url}/sites/{site}/catalog.yaml", etag)[0] for _ in range(5)) * 1000
            figures["folder catalog, warm (ms)"] = statistics.median(
                timed_get(f"{url}/sites/{site}/quicklooks/catalog.yaml")[0] for _ in range(5)) * 1000
            figures["entries page of 100 (ms)"] = statistics.median(
                timed_get(f"{url}/api/sites/{site}/entries?limit=100&after=quicklooks/m")[0]
                for _ in range(5)) * 1000
            runs = [_python(workdir, _OPEN, url, site, "2020-01-10") for _ in range(3)]
            figures["eurec4a-nt ls SITE --server (command, s)"] = statistics.median(
                _cli_seconds("ls", site, "--server", url) for _ in range(3))
        figures["/health slowest meanwhile, warm (ms)"] = probe.peak * 1000
        figures["open_catalog(server=) (s)"] = statistics.median(r["open"] for r in runs)
        figures["open + list a site (s)"] = statistics.median(r["open"] + r["site"] for r in runs)
        figures["a day of a series, its entries (s)"] = statistics.median(r["series_day"] for r in runs)
        figures["server RSS (MB)"] = rss(server.proc.pid) / 1e6 if server.proc else 0.0
    finally:
        server.stop()
    return figures


GOALS = {"open_catalog(server=) (s)": "<= 2 s", "a site's catalog, first request: slowest (ms)": "<= 200 ms",
         "/health slowest meanwhile (ms)": "<= 50 ms", "/health slowest meanwhile, warm (ms)": "<= 50 ms",
         "eurec4a-nt ls SITE --server (command, s)": "<= 1 s", "server RSS (MB)": "<= 200 MB"}


def report(count: int, n: int, figures: dict[str, float]) -> list[str]:
    lines = [SECTION, "", f"One hub server holding {count} sites' logs of {n:,} entries each "
             f"({count * n:,} entries), named as in the catalogs section; reader figures are the median "
             "of 3 fresh processes (imports not counted).", "",
             f"- command: `python -m bench.hub --sites {count} --entries {n}`",
             *(line for line in machine()[:1]), "", "| figure | value | goal |", "|---|---|---|"]
    for key, value in figures.items():
        lines.append(f"| {key} | {value:,.0f} | {GOALS.get(key, '')} |" if value >= 100
                     else f"| {key} | {value:.3g} | {GOALS.get(key, '')} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-hub-") as tmp:
        figures = measure(args.sites, args.entries, Path(tmp))
    lines = report(args.sites, args.entries, figures)
    write_section(args.out, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
