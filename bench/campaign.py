"""A campaign of twelve sites at campaign size: a hub (OPS) and eleven sites dialling it,
every one a real ``eurec4a-nt serve`` process of one keyring, filled with 10,000 entries
as a campaign makes them, measured as its users meet it.

    python -m bench.campaign            # 10,000 entries (about 15 minutes on 2 cores)
    python -m bench.campaign --quick    # 1,200 entries

Three ships dial the hub over the emulated satellite link (1 MB/s down, 250 KB/s up,
350 ms one way), the other eight directly on loopback. Every link pushes ``quicklook``
and ``sondes`` and prefetches ``quicklook`` from the hub, so each quicklook goes to
the hub and on to every other site. The sites publish small files (quicklooks,
sounding levels, raw files that stay on board) through their servers, one publish call
per folder, all sites at once; the three ships add a few netCDF soundings, the
observatory one zarr time series. Measured: time until the hub holds every pushed entry
and every site every quicklook; the hub's link bytes against what had to move; the
hub's memory; catalogs, pages and an xarray read through the hub; ``/health`` polled
every 50 ms from its own process all along; and one new quicklook relayed ship -> hub
-> ship, on the empty campaign and again with every entry present.

The section "Campaign of twelve sites" of ``bench/results.md`` is rewritten.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile

from .catalogs import _python, rss, timed_get, write_section
from .common import HERE

SECTION = "## Campaign of twelve sites"
HUB = "OPS"
SATELLITE = ("RV-Meteor", "RV-Ronald-Brown", "RV-Atalante")
LOOPBACK = ("RV-MS-Merian", "BCO", "HALO", "ATR", "P3", "Twin-Otter", "Saildrones", "Gliders")
SITES = SATELLITE + LOOPBACK
LINK = {"push": ["quicklook", "sondes"], "prefetch": ["quicklook"]}
INSTRUMENTS = ("ceilometer", "cloud-radar", "wind-lidar", "sky-camera")
NETCDF_PER_SHIP = 2
DEADLINE = 1200  # seconds from the first publish until every site holds what it should
RELAY_FROM, RELAY_TO = "RV-Meteor", ("RV-Atalante", "HALO")  # satellite -> hub -> satellite, loopback
#: ``/health`` every ``argv[2]`` s in a process of its own until stdin closes; prints
#: every answer slower than 50 ms (time since start, seconds taken) and the count.
_PROBE = """
import json, sys, threading, time, requests
url, every, slow, count, stop = sys.argv[1], float(sys.argv[2]), [], 0, threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
session, start = requests.Session(), time.time()
while not stop.is_set():
    t = time.perf_counter()
    try:
        session.get(url + "/health", timeout=60).raise_for_status()
    except requests.RequestException:
        slow.append((time.time() - start, -1.0))
    taken = time.perf_counter() - t
    count += 1
    if taken > 0.05:
        slow.append((time.time() - start, taken))
    stop.wait(every)
print(json.dumps({"count": count, "slow": slow, "start": start}))
"""
#: A reader at the hub: open the catalog, then one netCDF entry with xarray (the
#: libraries it needs imported first: their import is the same at any size).
_OPEN = """
import json, sys, time
import eurec4a_nt as nt, eurec4a_nt.client, eurec4a_nt.nested, eurec4a_nt.sources
import intake, intake_xarray, xarray, h5netcdf, dask.array
t0 = time.perf_counter()
cat = nt.open_catalog(server=sys.argv[1])
t1 = time.perf_counter()
source = cat[sys.argv[2]][sys.argv[3]]
ds = source.to_dask()
t2 = time.perf_counter()
values = ds["ta"].load()
t3 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "to_dask": t2 - t1, "load": t3 - t2, "values": int(values.size)}))
"""


def _say(text: str) -> None:
    print(f"[campaign] {text}", file=sys.stderr, flush=True)


class Probe:
    """The ``/health`` poller's process; :meth:`stop` returns its answers."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _PROBE, url, str(every)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def stop(self) -> dict[str, Any]:
        out, _ = self.proc.communicate("", timeout=120)
        return dict(json.loads(out))


def make_files(root: Path, n: int) -> dict[str, list[tuple[str, list[Path], str]]]:
    """Per site, its publish calls (folder name, files, topic), ``n`` entries in all:
    60% quicklooks, 30% sounding levels, 10% raw files, 300 B-3 kB of seeded bytes
    each; the ships' netCDF soundings and BCO's zarr count among the ``n``."""
    rng = random.Random(2020)
    special = {site: NETCDF_PER_SHIP for site in SATELLITE} | {"BCO": 1}
    calls: dict[str, list[tuple[str, list[Path], str]]] = {}
    for k, site in enumerate(SITES):
        m = n // len(SITES) + (k < n % len(SITES)) - special.get(site, 0)
        kinds = {"quicklook": m * 6 // 10, "sondes": m * 3 // 10}
        kinds["raw"] = m - sum(kinds.values())
        groups: dict[tuple[str, str], list[Path]] = {}
        for topic, count in kinds.items():
            for i in range(count):
                stamp = f"202002{1 + i // 288 % 28:02d}T{i % 288 // 12:02d}{i % 12 * 5:02d}"
                if topic == "quicklook":
                    folder, file = f"quicklooks/{INSTRUMENTS[i % 4]}", f"{site}_{INSTRUMENTS[i % 4]}_{stamp}.png"
                else:
                    folder, file = topic, f"{site}_{topic}_{stamp}.{'csv' if topic == 'sondes' else 'bin'}"
                path = root / site / folder / file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(rng.randbytes(int(min(3000, 300 + rng.expovariate(1 / 900)))))
                groups.setdefault((folder, topic), []).append(path)
        calls[site] = [(folder, paths, topic) for (folder, topic), paths in groups.items()]
        if site in SATELLITE:
            nc = root / site / "sondes" / "nc"
            nc.mkdir(parents=True)
            paths = [sampledata.sonde(nc / f"EUREC4A_{site}_sonde_L2_2020020{j + 1}T1045.nc", seed=k * 10 + j,
                                      platform=site, levels=600) for j in range(NETCDF_PER_SHIP)]
            calls[site].append(("sondes/nc", paths, "sondes"))
    return calls


def fill(c: Campaign, calls: dict[str, list[tuple[str, list[Path], str]]]) -> None:
    """Every site's publish calls through its server, all sites at once; BCO's zarr."""
    def publish(site: str) -> None:
        server = c.sites[site]
        for folder, paths, topic in calls[site]:
            nt.publish(paths, name=folder, topics=[topic], server=server.url, token=server.token, progress=False)
        if site == "BCO":
            nt.publish(sampledata.timeseries(seed=5, hours=24), name="timeseries/BCO_surface.zarr",
                       topics=["timeseries"], server=server.url, token=server.token, progress=False)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(publish, SITES))


def held(url: str, site: str, topic: str) -> tuple[int, int]:
    """(entries of ``site``'s ``topic`` held whole at ``url``, entries listed there)."""
    whole = listed = 0
    after = ""
    while True:
        answer = requests.get(f"{url}/api/sites/{site}/entries", timeout=300, params={
            "topic": topic, "held": "1", "limit": "1000", "after": after})
        if answer.status_code == 404:  # no commit of the site here yet
            return 0, 0
        body = answer.raise_for_status() or answer.json()
        listed += len(body["entries"])
        whole += sum(e["held"] == e["objects"] for e in body["entries"])
        after = body.get("next") or ""
        if not after:
            return whole, listed


def wait_held(url: str, want: dict[tuple[str, str], int], deadline: float, what: str) -> None:
    """Wait until the server at ``url`` holds ``want[(site, topic)]`` entries whole;
    TimeoutError (saying what is short) at the ``time.monotonic()`` ``deadline``."""
    for (site, topic), count in want.items():
        def enough(s: str = site, t: str = topic, k: int = count) -> bool:
            whole, listed = held(url, s, t)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} holds {whole} of {k} {t} entries of {s} ({listed} listed)")
            return whole >= k

        wait_until(enough, deadline - time.monotonic() + 60, f"{what}: {site} {topic}", interval=1.0)


def hub_bytes(c: Campaign) -> tuple[int, int, set[tuple[str, float]]]:
    """Bytes the hub's sessions with dialled-in sites sent and received (message bytes
    as the hub counts them), and the sessions (peer, since when)."""
    links = [link for link in c.hub.status()["links"] if not link["dialled"] and link["connected"]]
    return (sum(link["sent"] for link in links), sum(link["received"] for link in links),
            {(link["peer"], link["connected_since"]) for link in links})


def relay_once(c: Campaign, label: str, k: int, tmp: Path) -> dict[str, float]:
    """Publish one 50 kB quicklook at :data:`RELAY_FROM`; seconds until it is held
    at the hub and at each of :data:`RELAY_TO` (counted from the publish call)."""
    path = tmp / f"{RELAY_FROM}_new_{label}_{k}.png"
    path.write_bytes(random.Random(path.name).randbytes(50_000))  # new bytes each time
    name = f"quicklooks/new/{path.name}"
    source = c.sites[RELAY_FROM]
    where = {HUB: c.hub.url, **{s: c.sites[s].url for s in RELAY_TO}}

    def whole(url: str) -> bool:
        answer = requests.get(f"{url}/api/sites/{RELAY_FROM}/entries", timeout=30,
                              params={"prefix": name, "held": "1", "limit": "1"})
        body = answer.json() if answer.ok else {"entries": []}  # 404: no commit of the site yet
        return bool(body["entries"]) and body["entries"][0]["held"] == body["entries"][0]["objects"]

    start = time.perf_counter()
    nt.publish(path, name, topics=["quicklook"], server=source.url, token=source.token, progress=False)
    out = {"publish": time.perf_counter() - start}

    def until(site: str) -> float:
        wait_until(lambda: whole(where[site]), 120, f"the new quicklook at {site}", interval=0.02)
        return time.perf_counter() - start

    with ThreadPoolExecutor(len(where)) as pool:
        out.update(zip(where, pool.map(until, where), strict=True))
    return out


def relay(c: Campaign, label: str, runs: int, tmp: Path) -> dict[str, float]:
    """The median of ``runs`` relays, each with the links idle before it (after one
    not counted: the first publish of a process pays for its imports)."""
    relay_once(c, f"{label}-warm", 0, tmp)
    results = []
    for k in range(runs):
        time.sleep(2)
        results.append(relay_once(c, label, k, tmp))
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def log_bytes(store: Path) -> dict[str, int]:
    """Bytes of each site log a store holds."""
    return {p.stem: p.stat().st_size for p in (store / "logs").glob("*.jsonl")}


def minimum(calls: dict[str, list[tuple[str, list[Path], str]]], grown: dict[str, int]) -> dict[str, int]:
    """What had to cross the hub's links: pushed data in, every site's quicklooks out to
    every other site; and each site's new commits in once, out to the ten others."""
    def total(site: str, topics: tuple[str, ...]) -> int:
        return sum(p.stat().st_size for _, paths, topic in calls[site] if topic in topics for p in paths)

    quicklooks = {site: total(site, ("quicklook",)) for site in SITES}
    logs = sum(grown.get(site, 0) for site in SITES)
    return {"in": sum(total(site, ("quicklook", "sondes")) for site in SITES),
            "out": sum(sum(quicklooks.values()) - quicklooks[site] for site in SITES),
            "logs in": logs, "logs out": sum(logs - grown.get(site, 0) + grown.get(HUB, 0) for site in SITES)}


def reads(c: Campaign, workdir: Path, calls: dict[str, list[tuple[str, list[Path], str]]]) -> dict[str, float]:
    """A reader's requests at the hub, and a fresh process opening a netCDF entry."""
    url, site = c.hub.url, SATELLITE[0]
    out: dict[str, float] = {}
    out["/catalog.yaml cold"], top = timed_get(f"{url}/catalog.yaml")
    out["/catalog.yaml 304"], _ = timed_get(f"{url}/catalog.yaml", {"If-None-Match": top.headers["ETag"]})
    folder = f"{url}/sites/{site}/quicklooks/ceilometer/catalog.yaml"
    out["folder catalog cold"], first = timed_get(folder)
    out["folder catalog 304"], _ = timed_get(folder, {"If-None-Match": first.headers["ETag"]})
    out["entries page"], _ = timed_get(f"{url}/api/sites/{site}/entries?limit=100&after=quicklooks/m")
    out["search"], _ = timed_get(f"{url}/api/sites/{site}/entries?q=wind-lidar&limit=100")
    netcdf = next(f"sondes/nc/{p.name}" for folder, paths, _ in calls[site] if folder == "sondes/nc" for p in paths)
    opened = _python(workdir, _OPEN, url, site, netcdf)
    out |= {"open_catalog": opened["open"], "to_dask": opened["to_dask"], "load": opened["load"]}
    return out


def run(n: int, workdir: Path, runs: int) -> dict[str, Any]:
    """Every figure of one campaign of ``n`` entries."""
    remotes = {s: Remote(LinkProfile.satellite() if s in SATELLITE else None, link=LINK) for s in SITES}
    calls = make_files(workdir / "files", n)
    with Campaign(workdir / "sites", HUB, remotes) as c:
        c.wait_connected(120)
        _say("twelve sites up and linked")
        out: dict[str, Any] = {"empty": relay(c, "empty", runs, workdir)}
        _say(f"relay on the empty campaign: {out['empty']}")
        time.sleep(3)
        probe = Probe(c.hub.url)
        try:
            out |= measure(c, n, calls, workdir, runs)
        finally:
            out["health"] = probe.stop()
    return out


def measure(c: Campaign, n: int, calls: dict[str, list[tuple[str, list[Path], str]]], workdir: Path,
            runs: int) -> dict[str, Any]:
    """Fill the running campaign, wait until everything is where it goes, read, relay."""
    out: dict[str, Any] = {}
    sent0, received0, sessions = hub_bytes(c)
    logs0 = log_bytes(c.hub.store)
    marks = out["marks"] = {"fill": time.time()}
    start = time.perf_counter()
    deadline = time.monotonic() + DEADLINE
    fill(c, calls)
    out["publish"] = time.perf_counter() - start
    _say(f"{n} entries published at {len(SITES)} sites in {out['publish']:.1f} s")
    pushed = {(s, t): sum(len(p) for _, p, topic in calls[s] if topic == t) for s in SITES
              for t in ("quicklook", "sondes")}
    wait_held(c.hub.url, pushed, deadline, "the hub")
    out["hub holds all"] = time.perf_counter() - start
    _say(f"the hub holds every pushed entry after {out['hub holds all']:.1f} s")
    for site in SITES:
        wait_held(c.sites[site].url, {(s, "quicklook"): pushed[(s, "quicklook")] for s in SITES if s != site},
                  deadline, site)
    out["sites hold all"] = time.perf_counter() - start
    _say(f"every site holds every quicklook after {out['sites hold all']:.1f} s")
    time.sleep(3)
    sent, received, now = hub_bytes(c)
    out["sent"], out["received"] = sent - sent0, received - received0
    out["reconnected"] = len(now - sessions)  # their bytes before the new session are not counted
    grown = {s: size - logs0.get(s, 0) for s, size in log_bytes(c.hub.store).items()}
    out["minimum"] = minimum(calls, grown)
    out["satellite"] = {s: c.links[s].stats for s in SATELLITE}
    marks["reads"] = time.time()
    out["reads"] = reads(c, workdir, calls)
    _say(f"reads: {out['reads']}")
    assert c.hub.proc is not None
    out["rss"] = rss(c.hub.proc.pid)
    out["rss sites"] = max(rss(s.proc.pid) for s in c.sites.values() if s.proc is not None)
    out["entries"] = sum(v["entries"] for v in c.hub.status()["sites"].values())
    marks["relay"] = time.time()
    out["full"] = relay(c, "full", runs, workdir)
    _say(f"relay with every entry present: {out['full']}")
    return out


def _phase(at: float, marks: dict[str, float]) -> str:
    return max((name for name, t in marks.items() if t <= at), key=lambda name: marks[name], default="fill")


def report(n: int, out: dict[str, Any], command: str, load: str) -> list[str]:
    low = out["minimum"]
    health = out["health"]
    slow = [(health["start"] + t, taken) for t, taken in health["slow"]]
    worst = max(slow, key=lambda s: s[1], default=(0.0, 0.0))
    sat_up = sum(s["sent_up"] for s in out["satellite"].values())
    sat_down = sum(s["sent_down"] for s in out["satellite"].values())
    r, e, f = out["reads"], out["empty"], out["full"]

    def ms(x: float) -> str:
        return f"{x * 1000:.0f} ms"

    lines = [SECTION, "", f"- command: `{command}`", f"- load average (1, 5, 15 min) at start: {load}",
             f"- {len(SITES) + 1} sites, each a `eurec4a-nt serve` process: hub {HUB}; {', '.join(SATELLITE)} "
             f"over the emulated satellite link; {', '.join(LOOPBACK)} on loopback; links push quicklook and "
             "sondes, prefetch quicklook", "",
             "| figure | value |", "|---|---|",
             f"| entries at the hub after the fill (the relayed quicklooks before it included) | {out['entries']:,} |",
             f"| publish at all sites at once (one call per folder, 4 threads) | {out['publish']:.1f} s |",
             f"| the hub holds every pushed entry (from the first publish) | {out['hub holds all']:.1f} s |",
             f"| every site holds every other site's quicklooks | {out['sites hold all']:.1f} s |",
             f"| hub received / data pushed | {out['received'] / 1e6:.1f} MB / {low['in'] / 1e6:.1f} MB "
             f"= {out['received'] / low['in']:.2f}x |",
             f"| hub sent / quicklooks to pass on | {out['sent'] / 1e6:.1f} MB / {low['out'] / 1e6:.1f} MB "
             f"= {out['sent'] / low['out']:.2f}x |",
             f"| ... against data + new commits (in; out) | {out['received'] / (low['in'] + low['logs in']):.2f}x; "
             f"{out['sent'] / (low['out'] + low['logs out']):.2f}x (commits: {low['logs in'] / 1e6:.1f} MB in, "
             f"{low['logs out'] / 1e6:.1f} MB out) |",
             f"| sessions that reconnected meanwhile (bytes then undercounted) | {out['reconnected']} |",
             f"| satellite links on the wire (3 ships, whole run), up / down | {sat_up / 1e6:.1f} MB / "
             f"{sat_down / 1e6:.1f} MB |",
             f"| hub RSS after the fill and reads (largest other site) | {out['rss'] / 1e6:.0f} MB "
             f"({out['rss sites'] / 1e6:.0f} MB) |",
             f"| `/catalog.yaml`, cold / 304 | {ms(r['/catalog.yaml cold'])} / {ms(r['/catalog.yaml 304'])} |",
             f"| folder catalog (a ship's quicklooks of one instrument), cold / 304 | "
             f"{ms(r['folder catalog cold'])} / {ms(r['folder catalog 304'])} |",
             f"| `/api/sites/<site>/entries` page of 100; search `q=` | {ms(r['entries page'])}; {ms(r['search'])} |",
             f"| `open_catalog(server=hub)` (fresh process, imports not counted) | {r['open_catalog']:.2f} s |",
             f"| a netCDF sounding through it: `.to_dask()`; `.load()` of one variable | {r['to_dask']:.2f} s; "
             f"{r['load']:.2f} s |",
             f"| `/health` every 50 ms from fill to end: answers; slowest (during) | {health['count']:,}; "
             f"{ms(worst[1])} ({_phase(worst[0], out['marks'])}) |",
             f"| ... answers over 50 ms / over 1 s / failed | {sum(t > 0.05 for _, t in slow)} / "
             f"{sum(t > 1 for _, t in slow)} / {sum(t < 0 for _, t in slow)} |"]
    lines += ["", f"One new 50 kB quicklook published at {RELAY_FROM} (median of the runs; seconds from the "
              "publish call):", "", f"| | empty campaign | {out['entries']:,} entries |", "|---|---|---|"]
    for key, label in [("publish", "publish call returns"), (HUB, "held at the hub"),
                       *((s, f"held at {s} (relayed)") for s in RELAY_TO)]:
        lines.append(f"| {label} | {e[key]:.2f} s | {f[key]:.2f} s |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,200 entries instead of 10,000")
    parser.add_argument("--entries", type=int, help="entries in all (default 10,000; 1,200 with --quick)")
    parser.add_argument("--runs", type=int, default=3, help="relays measured on each side (median)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers and links stop on the way out
    n = args.entries or (1200 if args.quick else 10_000)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.campaign", *given])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-campaign-") as tmp:
        out = run(n, Path(tmp), args.runs)
    lines = [*report(n, out, command, load),
             f"- load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    write_section(args.out, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
