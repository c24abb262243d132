"""Bytes, round trips and hash passes: what a publish or a first read costs beyond the data.

1. publish a large file into a local store against ``openssl dgst -sha256`` of the same
   file, and against hashlib's SHA-256 on one core in the same process (goal >= 0.8x);
2. publish 10,000 small files locally in one call, beside ``rsync -a --fsync`` of the same
   folder (goal < 20 s);
3. first open of a ship's zarr entry by a reader at the hub, over the emulated satellite
   link (goal: <= 2 round trips plus the transfer of what is read);
4. a lazy read of 100 values from a ~40 MB netCDF entry at the ship, by a reader at the hub:
   bytes over the link against the bytes the reader read, through the entry's zarr view
   and, as before, with h5netcdf over ``/data`` (goal <= 1.2x); and a first read of 1,000
   bytes of another such entry over ``/data``, in round trips (the record and the leaves
   holding them come together: one);
5. a 200 KB quicklook published during an 8 MB bulk push, both ways, without a
   configured rate, against the same quicklook alone (goal <= 1.3x).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata

from .common import Result, table
from .lan import _fresh_site, _hash_tool, _runs, publish_measured
from .peers import Link, Processes, wait_for
from .wan import HUB, SAT, SETTLE, SHIP, Context, Settings, Sites, entries, holds, human, tiny_files, verdict

GROUP = "lean"
MB = 1_000_000
RTT = 2 * SAT.delay


def _say(text: str) -> None:
    print(f"[{GROUP}] {text}", file=sys.stderr, flush=True)


def _hashlib_seconds(path: Path) -> float:
    """Seconds hashlib's SHA-256 takes over the file on one core (read included)."""
    start = time.monotonic()
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while data := f.read(8 << 20):
            h.update(data)
    return time.monotonic() - start


def _cut_and_hash_seconds(path: Path) -> float:
    """Seconds publishing's own work takes (read, cut, hash every block), without the disk."""
    from eurec4a_nt.chunking import record_file

    start = time.monotonic()
    record_file(path, lambda items: [None for _ in items])
    return time.monotonic() - start


def _copy_fsync_seconds(path: Path, target: Path) -> float:
    """Seconds ``dd`` takes to copy the file and fsync it: what this disk writes durably."""
    start = time.monotonic()
    subprocess.run(["dd", f"if={path}", f"of={target}", "bs=4M", "conv=fsync", "status=none"],
                   check=True, timeout=600)
    seconds = time.monotonic() - start
    target.unlink()
    return seconds


def bench_publish(size: int, workdir: Path) -> list[Result]:
    data = sampledata.raw_file(workdir / "big.bin", size=size, seed=14)
    ssl_times, _ = _hash_tool(["openssl", "dgst", "-sha256", "-r"], data, runs=3)
    ssl_times.append(min(ssl_times))  # the best warm run counts: this machine is shared
    cut = min(_cut_and_hash_seconds(data) for _ in range(2))
    disk = _copy_fsync_seconds(data, workdir / "copy.bin")
    runs = []
    for i in range(2):
        store = _fresh_site(workdir / f"publish-{i + 1}")
        runs.append(publish_measured(data, "big.bin", workdir, store=store))
        shutil.rmtree(store.parent)
    in_memory = []
    if Path("/dev/shm").is_dir():  # the same publish with the disk out of the way
        for _ in range(2):
            with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="eurec4a-nt-lean-") as tmp:
                store = _fresh_site(Path(tmp) / "s")
                in_memory.append(publish_measured(data, "big.bin", workdir, store=store))
    hashlib_s = min(_hashlib_seconds(data) for _ in range(2))
    publish = runs[-1]["seconds"]
    imported = f"publish() timed once imported (the import took {runs[-1]['import_seconds']:.2f} s, not counted)"
    ratio = ssl_times[-1] / publish
    label = f"{size / MB:.0f} MB"
    _say(f"publish {label}: {publish:.2f} s; cut+hash {cut:.2f} s; dd {disk:.2f} s; openssl {ssl_times[-1]:.2f} s; "
         f"hashlib {hashlib_s:.2f} s")
    bound = max(ssl_times[-1], disk)
    return [
        Result(f"{GROUP}: hash {label}", "openssl dgst -sha256", wall=ssl_times[-1],
               note=f"runs {', '.join(f'{t:.2f}' for t in ssl_times[:-1])} s, the best counts; "
                    f"{size / ssl_times[-1] / MB:.0f} MB/s; one core"),
        Result(f"{GROUP}: hash {label}", "hashlib sha256 (one core)", wall=hashlib_s,
               note=f"{size / hashlib_s / MB:.0f} MB/s, in the benchmark's own process"),
        Result(f"{GROUP}: write {label} durably", "dd conv=fsync", wall=disk,
               note=f"{size / disk / MB:.0f} MB/s: what this disk takes, a bound on any durable publish"),
        Result(f"{GROUP}: cut and hash {label} (publishing without the disk)", "eurec4a-nt", wall=cut,
               goal=f">= 0.8x openssl: {verdict(ssl_times[-1] / cut >= 0.8)}", value=ssl_times[-1] / cut,
               note=f"{size / cut / MB:.0f} MB/s: read, FastCDC, SHA-256 of every block (the only hash "
                    f"pass) in 2 hashing threads; {hashlib_s / cut:.2f}x hashlib"),
        Result(f"{GROUP}: publish {label} into a local store", "eurec4a-nt", wall=publish,
               goal=f">= 0.8x openssl: {verdict(ratio >= 0.8)}", value=ratio,
               note=f"runs {_runs(runs)} s, 2nd (warm, fresh store) counts; "
                    f"{size / publish / MB:.0f} MB/s, every block written and fsynced; "
                    f"{bound / publish:.2f}x the slower of openssl and the disk (dd); "
                    f"each byte hashed once (its block's id); {imported}"),
        *([Result(f"{GROUP}: publish {label} into a store in memory (tmpfs: the disk out of the way)",
                  "eurec4a-nt", wall=in_memory[-1]["seconds"],
                  goal=f">= 0.8x openssl: {verdict(ssl_times[-1] / in_memory[-1]['seconds'] >= 0.8)}",
                  value=ssl_times[-1] / in_memory[-1]["seconds"],
                  note=f"runs {_runs(in_memory)} s, the 2nd counts; "
                       f"{size / in_memory[-1]['seconds'] / MB:.0f} MB/s; the same publish, its store on /dev/shm, "
                       f"so every fsync is free: what publishing costs without the disk's limit; {imported}")]
          if in_memory else []),
    ]


def bench_small_files(n: int, workdir: Path) -> list[Result]:
    folder = workdir / "notes"
    paths = tiny_files(folder, n)
    store = _fresh_site(workdir / "small-site")
    start = time.monotonic()
    nt.publish(paths, name="notes", store=store, progress=False)
    ours = time.monotonic() - start
    target = workdir / "rsync-copy"
    start = time.monotonic()
    subprocess.run(["rsync", "-a", "--fsync", f"{folder}/", f"{target}/"], check=True, timeout=600)
    theirs = time.monotonic() - start
    _say(f"{n} small files: publish {ours:.2f} s, rsync --fsync {theirs:.2f} s")
    what = f"{GROUP}: publish {n} small files locally (one call)"
    return [Result(what, "eurec4a-nt", wall=ours, goal=f"< 20 s: {verdict(ours < 20)}", value=ours,
                   note=f"{n} entries, every object durable (group commits), signed commits; "
                        f"{ours / theirs:.2f}x rsync's wall"),
            Result(what, "rsync -a --fsync", wall=theirs, value=theirs,
                   note="a plain copy into a fresh local folder, each file fsynced")]


#: Readers import what opening over HTTP loads lazily first, so only the open is timed.
_IMPORTS = "import aiohttp, fsspec.implementations.http, zarr, zarr.storage, xarray as xr\n"

_OPEN_ZARR = _IMPORTS + """
import json, sys, time
spans = []
async def start(session, ctx, params): ctx.start = time.monotonic()
async def end(session, ctx, params): spans.append((ctx.start, time.monotonic()))
trace = aiohttp.TraceConfig()
trace.on_request_start.append(start)
trace.on_request_end.append(end)
t = time.monotonic()
ds = xr.open_zarr(sys.argv[1], storage_options={"client_kwargs": {"trace_configs": [trace]}})
wall = time.monotonic() - t
print(json.dumps({"wall": wall, "http": max(e for _, e in spans) - min(s for s, _ in spans),
                  "requests": len(spans), "vars": len(ds.data_vars)}))
"""

_READ_NC = _IMPORTS + """
import json, sys, time
import fsspec, h5netcdf
url, how = sys.argv[1:3]
t = time.monotonic()
if how == "view":
    ds = xr.open_zarr(url)
else:
    ds = xr.open_dataset(fsspec.open(url).open(), engine="h5netcdf")
values = ds["dbz"].isel(time=ds.sizes["time"] // 2, height=slice(100, 200)).values
print(json.dumps({"wall": time.monotonic() - t, "n": int(values.size), "sum": float(abs(values).sum())}))
"""


def _served(site: object) -> int:
    return int(site.status()["traffic"]["served"])  # type: ignore[attr-defined]


def _reader(script: str, *args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reader failed: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_first_reads(ctx: Context, days: int, nc_days: int) -> list[Result]:
    root = ctx.dir("lean-reads")
    sites = Sites(ctx, root)
    hub, link = sites.start_link()
    ship = sites.connect_ship(link, push=("quicklook",))
    zarr_name = "raw/cloud-radar-series"
    nt.publish(sampledata.timeseries(seed=11, hours=24 * days), name=zarr_name, topics=["raw"],
               server=ship.url, token=ship.token, progress=False)
    files = {}  # one file per reader, so that neither finds blocks the other brought
    for how, seed in (("view", 12), ("h5netcdf", 13), ("range", 14)):
        files[how] = sampledata.grow_netcdf(root / f"cloud-radar-{seed}.nc", seed=seed, days=nc_days)
        nt.publish(files[how], name=f"raw/{files[how].name}", topics=["raw"], server=ship.url, token=ship.token,
                   progress=False)
    names = {zarr_name, *(f"raw/{p.name}" for p in files.values())}
    wait_for(lambda: names <= set(entries(hub, SHIP)), 60, "entries known at the hub")
    time.sleep(SETTLE)
    out = []

    link.reset_counters()
    opened = _reader(_OPEN_ZARR, f"{hub.url}/data/{SHIP}/{zarr_name}")
    time.sleep(SETTLE)
    up, down = link.bytes()
    transfer = up / (SAT.up or 1e12) + down / (SAT.down or 1e12)
    rounds = (opened["http"] - transfer) / RTT
    out.append(Result(f"{GROUP}: first open of a ship's zarr at the hub ({days}-day zarr)", "eurec4a-nt",
                      opened["wall"], up, down, goal=f"<= 2 round trips + transfer: {verdict(rounds <= 2)}",
                      value=rounds, note=f"xr.open_zarr over HTTP at the hub: {opened['wall']:.2f} s, of which "
                                         f"{opened['http']:.2f} s from its first request to the end of its last "
                                         f"({opened['requests']:.0f} requests) = {rounds:.2f} round trips of "
                                         f"{RTT:.1f} s + {transfer:.2f} s transfer "
                                         f"({human(up + down)} over the link: the manifest, with consolidated "
                                         "metadata and coordinates inline)"))

    for how in ("view", "h5netcdf"):
        nc = files[how]
        url = f"{hub.url}/{'zarr' if how == 'view' else 'data'}/{SHIP}/raw/{nc.name}"
        link.reset_counters()
        served = _served(hub)
        answer = _reader(_READ_NC, url, how)
        time.sleep(SETTLE)
        up, down = link.bytes()
        read = _served(hub) - served
        ratio = (up + down) / read
        tool = "eurec4a-nt (zarr view)" if how == "view" else "eurec4a-nt (h5netcdf over /data)"
        out.append(Result(f"{GROUP}: lazy read of 100 values, {nc.stat().st_size / MB:.0f} MB netCDF at the ship",
                          tool, answer["wall"], up, down,
                          goal=f"<= 1.2x bytes read: {verdict(ratio <= 1.2)}" if how == "view" else "",
                          value=ratio, note=f"{human(up + down)} over the link for {human(read)} the reader read "
                                            "at the hub; where a read needs at most half of a block, only "
                                            "the 16 KiB leaves holding it cross the link, verified at the hub "
                                            "against the block's tree root (whole blocks otherwise)"))
    out.append(_first_range_read(hub.url, files["range"], link))
    link.stop()
    sites.stop()
    return out


def _quicklook_time(site: object, other: object, owner: str, path: Path) -> float:
    """Seconds from publishing ``path`` at ``site`` until ``other`` holds it."""
    name = f"quicklooks/{path.name}"
    start = time.monotonic()
    nt.publish(path, name=name, topics=["quicklook"], server=site.url, token=site.token,  # type: ignore[attr-defined]
               progress=False)
    wait_for(lambda: holds(other, owner, name), 120, "quicklook at the other side", 0.02)  # type: ignore[arg-type]
    return time.monotonic() - start


def _first_range_read(hub_url: str, nc: Path, link: Link) -> Result:
    """1,000 bytes from the middle of ``nc`` (a ship's entry the hub holds nothing of) read
    at the hub over ``/data``, in round trips of the emulated link beyond the transfer."""
    start = nc.stat().st_size // 2
    link.reset_counters()
    began = time.monotonic()
    answer = requests.get(f"{hub_url}/data/{SHIP}/raw/{nc.name}", headers={"Range": f"bytes={start}-{start + 999}"},
                          timeout=120)
    wall = time.monotonic() - began
    with nc.open("rb") as f:
        f.seek(start)
        if answer.status_code != 206 or answer.content != f.read(1000):
            raise RuntimeError(f"the range read gave {answer.status_code} and other bytes")
    time.sleep(SETTLE)
    up, down = link.bytes()
    rounds = (wall - up / (SAT.up or 1e12) - down / (SAT.down or 1e12)) / RTT
    return Result(f"{GROUP}: first read of 1,000 bytes of a {nc.stat().st_size / MB:.0f} MB netCDF at the ship over "
                  "/data", "eurec4a-nt", wall, up, down, goal=f"1 round trip + transfer: {verdict(rounds < 1.5)}",
                  value=rounds, note=f"{human(up + down)} over the link: the file record, and the leaves holding "
                                     "the bytes sent right after it, unasked (a want naming \"leaves\"); "
                                     f"{rounds:.2f} round trips of {RTT:.1f} s beyond the transfer")


def bench_quicklook_during_bulk(ctx: Context, bulk_size: int) -> list[Result]:
    """A 200 KB quicklook published 1 s into an 8 MB bulk push, both ways, no ``rate:``."""
    root = ctx.dir("lean-bulk")
    sites = Sites(ctx, root)
    hub, link = sites.start_link()
    ship = sites.connect_ship(link, push=("quicklook", "raw"), prefetch=("quicklook", "raw"))
    files = root / "files"
    files.mkdir()
    out = []
    for site, other, owner, direction in ((ship, hub, SHIP, "ship -> hub"), (hub, ship, HUB, "hub -> ship")):
        seed = 30 if owner == SHIP else 40  # other bytes each way: the far side holds none of them
        _quicklook_time(site, other, owner, sampledata.quicklook_png(  # warm-up, not timed
            files / f"warm-{owner}.png", seed=seed, target_bytes=20_000))
        alone = _quicklook_time(site, other, owner, sampledata.quicklook_png(
            files / f"alone-{owner}.png", seed=seed + 1, target_bytes=200_000))
        bulk = sampledata.raw_file(files / f"bulk-{owner}.bin", size=bulk_size, seed=seed + 2)
        pushed = time.monotonic()
        nt.publish(bulk, name=f"raw/{bulk.name}", topics=["raw"], server=site.url, token=site.token, progress=False)
        time.sleep(1.0)
        during = _quicklook_time(site, other, owner, sampledata.quicklook_png(
            files / f"during-{owner}.png", seed=seed + 4, target_bytes=200_000))
        wait_for(lambda b=bulk, o=other, w=owner: holds(o, w, f"raw/{b.name}"), 300, "bulk at the other side", 0.1)
        push = time.monotonic() - pushed
        ideal = (bulk_size + 200_000) / ((SAT.up if owner == SHIP else SAT.down) or 1e12) + RTT
        ratio = during / alone
        _say(f"quicklook {direction}: alone {alone:.2f} s, during bulk {during:.2f} s; push {push:.1f} s")
        out.append(Result(f"{GROUP}: 200 KB quicklook during an {bulk_size / MB:.0f} MB bulk push, {direction}",
                          "eurec4a-nt", during, goal=f"<= 1.3x alone, no rate: {verdict(ratio <= 1.3)}", value=ratio,
                          note=f"{during:.2f} s during the bulk push vs {alone:.2f} s alone; no rate: configured, "
                               "the sender paces itself from the peer's acknowledgements; the push held after "
                               f"{push:.1f} s from its publish call ({ideal / push:.2f}x the link's rate)"))
    link.stop()
    sites.stop()
    return out


def run(quick: bool, workdir: Path) -> list[Result]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    for name, fn in (("publish", lambda: bench_publish((128 if quick else 512) << 20, workdir)),
                     ("small files", lambda: bench_small_files(2000 if quick else 10_000, workdir))):
        try:
            results += fn()
        except Exception as exc:  # noqa: BLE001 - reported in the table
            results.append(Result(f"{GROUP}: {name}", "eurec4a-nt", note=f"FAILED: {exc}"[:300]))
    with Processes() as procs:
        ctx = Context(Settings.make(quick), workdir, procs)
        for name, step in (("first reads", lambda: bench_first_reads(ctx, 8 if quick else 30, 8 if quick else 34)),
                           ("quicklook during bulk", lambda: bench_quicklook_during_bulk(ctx, 8 << 20))):
            try:
                results += step()
            except Exception as exc:  # noqa: BLE001 - reported in the table
                results.append(Result(f"{GROUP}: {name}", "eurec4a-nt", note=f"FAILED: {exc}"[:300]))
            procs.close()
    return results


def headline(results: list[Result]) -> list[str]:
    lines = ["## Lean: hash passes, group commits, round trips and bytes of first reads", "",
             "| figure | eurec4a-nt | reference | goal |", "|---|---|---|---|"]
    for r in results:
        if r.tool.startswith("eurec4a-nt") and r.value is not None:
            ref = next((o for o in results if o.scenario == r.scenario and not o.tool.startswith("eurec4a-nt")), None)
            ref_text = f"{ref.tool} {ref.wall:.2f} s" if ref and ref.wall else ""
            if "publish" in r.scenario and "small" not in r.scenario:
                ssl = next((o for o in results if o.tool.startswith("openssl")), None)
                ref_text = f"openssl {ssl.wall:.2f} s" if ssl and ssl.wall else ""
            lines.append(f"| {r.scenario.removeprefix(GROUP + ': ')} ({r.tool}) | "
                         f"{r.wall:.2f} s, value {r.value:.3g} | {ref_text} | {r.goal} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """The first reads alone (rows 3 and 4: a zarr's first open, lazy netCDF reads),
    printed as a table; results.md is left as it is."""
    parser = argparse.ArgumentParser(prog="python -m bench.lean", description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data")
    args = parser.parse_args(argv)
    days, nc_days = (8, 8) if args.quick else (30, 34)  # as in run()
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-lean-") as tmp, Processes() as procs:
        results = bench_first_reads(Context(Settings.make(args.quick), Path(tmp), procs), days, nc_days)
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
