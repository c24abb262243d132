"""How fsspec's HTTP cache types read a netCDF entry through a stock catalog: bytes the
server sent and seconds to open the dataset and read one value of every variable,
for the cache types a catalog's ``storage_options`` can name. This is what chose
``cache_type: blockcache`` for the served catalogs (see
:data:`eurec4a_nt.catalog.HTTP_OPTIONS`); the section "Stock reads" of
``bench/results.md`` is rewritten.

    python -m bench.stock_reads
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests
import xarray as xr

import eurec4a_nt as nt
from eurec4a_nt.demokit.sites import SiteProcess, make_sites

from .catalogs import write_section
from .common import HERE, machine

SITE = "RV-Meteor"
NAME = "radar/LIMRAD94_20200201.nc"
SECTION = "## Stock reads"
#: fsspec HTTP storage options compared (the first is fsspec's default).
OPTIONS = {
    "default (readahead of 5 MB blocks)": {},
    "blockcache, 1 MiB blocks": {"cache_type": "blockcache", "block_size": 1 << 20},
    "blockcache, 256 KiB blocks": {"cache_type": "blockcache", "block_size": 256 << 10},
    "none": {"cache_type": "none"},
}
_OPEN = """
import json, sys, time
import fsspec, xarray as xr
t = time.perf_counter()
with fsspec.open(sys.argv[1], **json.loads(sys.argv[2])) as f:
    fetched, fetch = [0], f.cache.fetcher
    def counted(start, end):
        fetched[0] += 1
        return fetch(start, end)
    f.cache.fetcher = counted
    ds = xr.open_dataset(f, engine="h5netcdf")
    for var in ds.variables.values():
        var[tuple(0 for _ in var.dims)].values
print(json.dumps({"seconds": time.perf_counter() - t, "requests": fetched[0]}))
"""


def radar_day(path: Path) -> Path:
    """A 32 MB netCDF4 day of cloud radar: 86,400 profiles of 45 range gates, 2 variables."""
    rng = np.random.default_rng(1)
    ds = xr.Dataset({"Ze": (("time", "range"), rng.normal(-30, 10, (86_400, 45)).astype("f4")),
                     "vm": (("time", "range"), rng.normal(0, 1, (86_400, 45)).astype("f4"))},
                    coords={"time": np.arange(86_400), "range": np.arange(45) * 30.0})
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def served(url: str) -> int:
    return int(requests.get(url + "/api/status", timeout=30).json()["traffic"]["served"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stock_reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-stock-") as tmp:
        root = Path(tmp)
        make_sites(root, [SITE])
        size = radar_day(root / "day.nc").stat().st_size
        nt.publish(root / "day.nc", NAME, topics=["radar"], store=root / SITE, progress=False)
        rows = []
        with SiteProcess(root / SITE) as server:
            url = f"{server.url}/data/{SITE}/{NAME}"
            for label, options in OPTIONS.items():
                before = served(server.url)
                done = subprocess.run([sys.executable, "-c", _OPEN, url, json.dumps(options)], capture_output=True,
                                      text=True, timeout=300, check=True, cwd=root, env=dict(os.environ))
                out = json.loads(done.stdout.strip().splitlines()[-1])
                moved = served(server.url) - before
                rows.append(f"| {label} | {moved / 1e6:.2f} MB ({moved / size:.2f}x the file) | "
                            f"{out['requests']} | {out['seconds']:.2f} s |")
    lines = [SECTION, "", f"Opening a {size / 1e6:.1f} MB netCDF4 entry from `/data` with fsspec and xarray "
             "(h5netcdf) and reading one value of every variable, in a fresh process per cache type, "
             "on loopback.", "", "- command: `python -m bench.stock_reads`", machine()[0], "",
             "| fsspec HTTP storage options | bytes sent by the server | range requests | wall |",
             "|---|---|---|---|", *rows, "",
             "Over a link with a long round trip each range request costs that round trip: "
             "1 MiB blocks keep both the bytes (a tenth of the file) and the requests few."]
    write_section(args.out, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
