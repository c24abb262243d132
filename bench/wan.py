"""WAN benchmarks: eurec4a-nt against rsync and Syncthing on the same emulated satellite
link (default :meth:`LinkProfile.satellite`: 1 MB/s down, 250 KB/s up, 350 ms one way).

Scenarios 1-6 of issue 5. "up" is ship -> hub, "down" is hub -> ship; the ship always
dials (it is behind NAT): eurec4a-nt's ship server dials the hub's, rsync runs at the
ship against an ``rsync --daemon`` at the hub, and the ship's Syncthing is the only one
that knows an address of the other (the hub's, through the link).

Every timed sync is measured from the moment the link accepted its first connection
(the emulator restarts its byte counters and timeline then, and an outage schedule
starts then too), so every tool sees the same link phase; the end is when the receiver
holds everything (rsync: the client exited 0; eurec4a-nt: the receiving site server
holds every object of every entry; Syncthing: the receiving folder is idle, holds every
file and needs nothing). Bytes are what the emulator serialized onto the link, each way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.emulator import LinkProfile, Outages
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.keyring import Keyring, KeyringSite
from eurec4a_nt.sitestore import SiteStore

from .common import PLOTS, Result
from .peers import (
    Link,
    Processes,
    RsyncDaemon,
    rsync,
    rsync_until_done,
    syncthing_pair,
    tree_digest,
    tree_size,
    wait_for,
)

HUB, SHIP = "OPS", "RV-Meteor"
SAT = LinkProfile.satellite()
OUTAGES = Outages(period=8, duration=3)  # the first drop 5 s after the first connection
UPTIME = (OUTAGES.period - OUTAGES.duration) / OUTAGES.period


def _uptime(t: float, outages: Outages) -> float:
    """Seconds the link was up during the first ``t`` seconds of the schedule."""
    down_at = outages.period - outages.duration if outages.first is None else outages.first
    up, start = 0.0, 0.0
    while start < t:
        up += min(t, down_at) - start
        start = down_at + outages.duration
        down_at += outages.period
    return up


def phase_ideal(seconds: float, outages: Outages) -> float:
    """When a tool needing ``seconds`` of link time finishes at best, given the outage
    schedule's phase (counted from the first connection)."""
    down_at = outages.period - outages.duration if outages.first is None else outages.first
    t, left = 0.0, seconds
    while True:
        if left <= down_at - t:
            return t + left
        left -= down_at - t
        t = down_at + outages.duration
        down_at += outages.period
TOPIC = {"sondes": "sondes", "quicklooks": "quicklook", "blog": "blog", "raw": "raw"}
NT, RSYNC, ST = "eurec4a-nt", "rsync", "Syncthing"
SETTLE = 1.0  # seconds to wait after a transfer completed before reading byte counters

S1_DOWN, S1_UP = "1 initial sync down", "1 initial sync up"
S2_UP, S2_DOWN = "2 near-time 200 KB up", "2 near-time 200 KB down"
S3A, S3B, S3C = "3a growth netCDF +1 day", "3b 100 B inserted in 8 MiB", "3c growth zarr +1 h"
S4 = "4 outages 3 s/8 s, sync down"
S5A, S5B = "5 lazy read, 1st reader", "5 lazy read, 2nd reader"
S6 = "6 catalog +1 entry"


@dataclass
class Settings:
    quick: bool
    small_files: int
    small_total: int
    big_file: int
    reps: int
    growth_days: int
    lazy_days: int
    catalog_entries: int
    uplink_initial: bool
    syncthing_outage_timeout: float
    variants: bool  # extra rows: rsync -z, Syncthing with tuned watcher delay / reconnection interval
    outage_data: tuple[int, int, int] | None = None  # a smaller data set for scenario 4
    outages: Outages = OUTAGES

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            # a short run: the first drop 2 s after the first connection, so it sees drops
            return cls(True, 100, 2_500_000, 4 << 20, 2, 2, 8, 1000, False, 30.0, False,
                       (60, 1_500_000, 2 << 20), Outages(period=8, duration=3, first=2))
        return cls(False, 300, 6_500_000, 8 << 20, 5, 5, 30, 10_000, True, 600.0, True)


@dataclass
class Context:
    settings: Settings
    workdir: Path
    procs: Processes
    timelines: dict[str, dict[str, tuple[list[tuple[float, int, int]], float]]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    #: How the hub and ship of eurec4a-nt's initial and near-time runs are made (the TLS group's differ).
    site_pair: Callable[[Context, Path], Sites] | None = None

    def pair(self, root: Path) -> Sites:
        return (self.site_pair or Sites)(self, root)

    def keep_timeline(self, plot: str, tool: str, link: Link, wall: float | None, total: int) -> None:
        self.timelines.setdefault(plot, {})[tool] = (link.timeline, wall or 0.0)
        self.totals[plot] = total

    def dir(self, name: str) -> Path:
        path = self.workdir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


# -- formatting helpers ----------------------------------------------------------------------


def human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def failed(scenario: str, tool: str, exc: BaseException, goal: str = "") -> Result:
    text = f"{type(exc).__name__}: {exc}".replace("|", "/").replace("\n", " ")[:300]
    return Result(scenario, tool, goal=goal, note=f"FAILED: {text}")


def run_tools(what: str, tools: Sequence[tuple[str, Callable[[], Result]]]) -> list[Result]:
    """Run each tool's scenario in turn; a tool that fails is a FAILED row, not an abort."""
    out = []
    for tool, fn in tools:
        try:
            r = fn()
        except Exception as exc:  # noqa: BLE001 - reported in the table
            r = failed(what, tool, exc)
        r.scenario = what
        out.append(r)
    return out


# -- eurec4a-nt helpers ----------------------------------------------------------------------


class Sites:
    """A hub and a ship site store in ``root``; servers started on demand, stopped with ``procs``."""

    def __init__(self, ctx: Context, root: Path) -> None:
        self.ctx, self.root = ctx, root
        make_sites(root, [HUB, SHIP])
        self.hub: SiteProcess | None = None
        self.ship: SiteProcess | None = None

    def start_hub(self) -> SiteProcess:
        self.hub = SiteProcess(self.root / HUB)
        self.ctx.procs.on_close(self.hub.stop)
        return self.hub.start()

    def start_link(self, outages: Outages | None = None) -> tuple[SiteProcess, Link]:
        """Start the hub and the emulated satellite link in front of it."""
        hub = self.start_hub()
        link = Link(hub.port, SAT, outages)
        link.start()
        self.ctx.procs.on_close(link.stop)
        return hub, link

    def connect_ship(self, link: Link, push: tuple[str, ...] = (),
                     prefetch: tuple[str, ...] = ()) -> SiteProcess:
        """Start the ship dialling the hub over ``link``; return once the link is up."""
        ship = self.start_ship(link, push, prefetch)
        self.wait_connected()
        return ship

    def start_ship(self, link: Link, push: tuple[str, ...] = (), prefetch: tuple[str, ...] = ()) -> SiteProcess:
        """Start the ship dialling the hub over ``link``; its keyring lists the hub at the
        link's URL, as a campaign keyring lists the hub's, so its first dial is on clock."""
        hub = Keyring.load(self.root / "keyring.yaml").sites[HUB]
        SiteStore(self.root / SHIP).trust(Keyring({HUB: KeyringSite(HUB, hub.public_key, [link.url])}))
        args = ["--link", link.url]
        for topic in push:
            args += ["--push", topic]
        for topic in prefetch:
            args += ["--prefetch", topic]
        self.ship = SiteProcess(self.root / SHIP, args=args)
        self.ctx.procs.on_close(self.ship.stop)
        return self.ship.start()

    def stop(self) -> None:
        """Stop both servers (so they cost no CPU while the next tool runs)."""
        for site in (self.ship, self.hub):
            if site is not None:
                site.stop()

    def wait_connected(self, timeout: float = 30) -> None:
        assert self.ship is not None
        wait_for(lambda: any(lk.get("connected") for lk in self.ship.status()["links"]), timeout, "link up")


def entries(site: SiteProcess, owner: str) -> dict[str, dict[str, Any]]:
    """Entries of ``owner`` known at ``site``, with ``held``/``objects`` counts."""
    out: dict[str, dict[str, Any]] = {}
    after = ""
    while True:  # the API answers pages of at most 1000 entries
        answer = requests.get(f"{site.url}/api/sites/{owner}/entries", timeout=60,
                              params={"held": "1", "limit": "1000", "after": after})
        if answer.status_code != 200:
            return out
        body = answer.json()
        out.update((e["name"], e) for e in body["entries"])
        if not body.get("next"):
            return out
        after = body["next"]


def holds(site: SiteProcess, owner: str, name: str, root: str | None = None) -> bool:
    e = entries(site, owner).get(name)
    return bool(e) and e["held"] == e["objects"] and (root is None or e["root"] == root)


def objects(site: SiteProcess) -> tuple[int, int]:
    body = site.status()["objects"]
    return int(body["count"]), int(body["bytes"])


def publish_campaign(data: Path, **target: Any) -> list[str]:
    """Publish the campaign files, one publish call (one commit) per top folder; return
    the entry names. Blog posts are folders (directory entries)."""
    names = []
    for sub in sorted(p for p in data.iterdir() if p.is_dir()):
        items = sorted(sub.iterdir())
        nt.publish(items, name=sub.name, topics=[TOPIC[sub.name]], progress=False, **target)
        names += [f"{sub.name}/{p.name}" for p in items]
    return names


def verify_files(site: SiteProcess, owner: str, data: Path) -> None:
    """GET every file of the data set from ``site`` and compare it with the original."""
    with requests.Session() as http:
        for p in sorted(data.rglob("*")):
            if p.is_file():
                rel = p.relative_to(data).as_posix()
                got = http.get(f"{site.url}/data/{owner}/{rel}", timeout=60)
                if got.status_code != 200 or got.content != p.read_bytes():
                    raise AssertionError(f"{rel} differs at {site.url} (HTTP {got.status_code})")


def data_size(data: Path) -> int:
    return tree_size(data)[1]


def flow(timeline: list[tuple[float, int, int]], direction: str) -> str:
    """When the bulk of the data crossed the link and at what rate, from the emulator's
    timeline (samples every 0.1 s): where round trips and stalls are. The rate is taken
    between the samples at 10% and 90% of the bytes, not from the first and last, which
    fall up to a sample after the data started and ended (that read 0.99 MB/s on a link
    kept busy at 1 MB/s, rsync's too)."""
    col = 2 if direction == "down" else 1
    points = [(row[0], row[col]) for row in timeline]
    if not points or points[-1][1] < 100_000:
        return ""
    final = points[-1][1]
    start = next(t for t, v in points if v > 20_000)
    end = next(t for t, v in points if v >= final * 0.999)
    (t0, v0), (t1, v1) = next(p for p in points if p[1] >= final * 0.1), next(p for p in points if p[1] >= final * 0.9)
    rate = (v1 - v0) / max(t1 - t0, 1e-9)
    return f"data flowing from {start:.1f} s to {end:.1f} s at {rate / 1e6:.2f} MB/s"


# -- scenario 1 and 4: initial sync ----------------------------------------------------------


def nt_initial(ctx: Context, data: Path, direction: str, outages: Outages | None, label: str) -> Result:
    """eurec4a-nt: the source site holds the campaign; the ship's server starts and dials;
    done when the receiving server holds every object."""
    root = ctx.dir(f"nt-{label}")
    sites = ctx.pair(root)
    src = HUB if direction == "down" else SHIP
    names = publish_campaign(data, store=root / src)
    hub, link = sites.start_link(outages)
    topics = tuple(TOPIC.values())
    ship = sites.start_ship(link, prefetch=topics) if direction == "down" else sites.start_ship(link, push=topics)
    source, dest = (hub, ship) if direction == "down" else (ship, hub)
    want = objects(source)
    total = data_size(data)
    bandwidth = SAT.down if direction == "down" else SAT.up
    assert bandwidth
    ideal = total / bandwidth / (UPTIME if outages else 1)
    t0 = link.wait_start(60)
    limit = ideal * 6 + 120
    wait_for(lambda: objects(dest)[0] >= want[0], limit, "all objects at the receiver", 0.1)
    t1 = time.monotonic()
    up, down = link.bytes()
    stats = link.stats
    # held per entry, and every file's bytes, checked after the clock stopped
    known = entries(dest, src)
    incomplete = [n for n in names if n not in known or known[n]["held"] != known[n]["objects"]]
    if incomplete:
        raise AssertionError(f"{len(incomplete)} entries incomplete at the receiver, e.g. {incomplete[:3]}")
    verify_files(dest, src, data)
    wall = t1 - t0
    moved = down if direction == "down" else up
    lost = moved - int(stats["delivered_down" if direction == "down" else "delivered_up"])
    ctx.keep_timeline(label, NT, link, wall, total)
    timing = flow(link.timeline, direction)
    link.stop()
    sites.stop()
    return Result("", NT, wall, up, down, ideal,
                  note=f"{len(names)} entries, {human(total)} data, {human(moved)} over the link "
                       f"({moved / total:.3f}x data; zstd on the wire); {timing}; resets {stats['resets']}"
                       + (f", {human(lost)} of the bytes sent were in flight at a reset and lost" if outages else "")
                       + "; verified",
                  extra={"moved": moved, "total": total})


def rsync_initial(ctx: Context, data: Path, direction: str, outages: Outages | None, label: str) -> Result:
    root = ctx.dir(f"rsync-{label}")
    hub_dir = data if direction == "down" else root / "hub"
    daemon = RsyncDaemon(ctx.procs, hub_dir, root)
    link = Link(daemon.port, SAT, outages)
    link.start()
    ctx.procs.on_close(link.stop)
    total = data_size(data)
    bandwidth = SAT.down if direction == "down" else SAT.up
    assert bandwidth
    ideal = total / bandwidth / (UPTIME if outages else 1)
    url = RsyncDaemon.url(link.port)
    args = ["-a", url, f"{root / 'ship'}/"] if direction == "down" else ["-a", f"{data}/", url]
    if outages:
        args = ["--partial", "--timeout=10", *args]
        run = rsync_until_done(args, time.monotonic() + ideal * 10 + 120)
    else:
        run = rsync(args, ideal * 10 + 120)
    t1 = time.monotonic()
    up, down = link.bytes()
    stats = link.stats
    if run.returncode != 0:
        raise RuntimeError(f"rsync exited {run.returncode} after {run.attempts} attempts: {run.output[-300:]}")
    dest = root / "ship" if direction == "down" else root / "hub"
    if tree_digest(dest) != tree_digest(data):
        raise AssertionError("rsync's copy differs")
    wall = t1 - (link.start_time or t1)
    moved = down if direction == "down" else up
    ctx.keep_timeline(label, RSYNC, link, wall, total)
    timing = flow(link.timeline, direction)
    link.stop()
    extra = f"; {run.attempts} runs (`until rsync --partial --timeout=10 ...; do sleep 1; done`)" if outages else ""
    return Result("", RSYNC, wall, up, down, ideal,
                  note=f"{human(moved)} over the link ({moved / total:.3f}x data); {timing}{extra}; "
                       f"resets {stats['resets']}",
                  extra={"moved": moved, "total": total})


def syncthing_initial(ctx: Context, data: Path, direction: str, outages: Outages | None, label: str,
                      timeout: float, options: dict[str, str] | None = None, tool: str = ST) -> Result:
    root = ctx.dir(f"st-{label}-{len(options or {})}")
    hub_dir, ship_dir = root / "hub", root / "ship"
    shutil.copytree(data, hub_dir if direction == "down" else ship_dir, copy_function=shutil.copy2)
    files, total = tree_size(data)
    bandwidth = SAT.down if direction == "down" else SAT.up
    assert bandwidth
    ideal = total / bandwidth / (UPTIME if outages else 1)
    pair = syncthing_pair(ctx.procs, root, hub_dir, ship_dir, outages=outages, options=options)
    try:
        receiver = pair.ship if direction == "down" else pair.hub
        t0 = pair.link.wait_start(120)
        done = True
        try:
            wait_for(lambda: receiver.idle_with(files), timeout, "Syncthing complete", 0.2)
        except TimeoutError:
            done = False
        t1 = time.monotonic()
        up, down = pair.link.bytes()
        stats = pair.link.stats
        dest = ship_dir if direction == "down" else hub_dir
        got_files, got_bytes = tree_size(dest)
        moved = down if direction == "down" else up
        wall = t1 - t0
        ctx.keep_timeline(label, tool, pair.link, wall, total)
        timing = flow(pair.link.timeline, direction)
        if done and tree_digest(dest) != tree_digest(data):
            raise AssertionError("Syncthing's copy differs")
    finally:
        pair.stop()
    note = (f"{human(moved)} over the link ({moved / total:.3f}x data); {timing}; resets {stats['resets']}, "
            f"connections {stats['connections']}")
    if outages:
        note += f"; reconnectionIntervalS={(options or {}).get('reconnectionIntervalS', '60 (default)')}"
    if not done:
        note = (f"NOT COMPLETE after {timeout:.0f} s: {got_files}/{files} files, {human(got_bytes)} of "
                f"{human(total)}; " + note)
        return Result("", tool, None, up, down, ideal, note=note, extra={"moved": moved, "total": total})
    return Result("", tool, wall, up, down, ideal, note=note + "; verified",
                  extra={"moved": moved, "total": total})


def scenario_initial(ctx: Context, data: Path, direction: str) -> list[Result]:
    label = f"initial-{direction}"
    scenario = S1_DOWN if direction == "down" else S1_UP
    files, total = tree_size(data)
    what = f"{scenario} ({files} files, {human(total)}, {'1 MB/s' if direction == 'down' else '250 KB/s'})"
    out = run_tools(what, ((NT, lambda: nt_initial(ctx, data, direction, None, label)),
                           (RSYNC, lambda: rsync_initial(ctx, data, direction, None, label)),
                           (ST, lambda: syncthing_initial(ctx, data, direction, None, label, 600))))
    rs = next((r.wall for r in out if r.tool == RSYNC and r.wall), None)
    for r in out:
        if r.wall is None or not r.ideal:
            continue
        r.value = r.wall / r.ideal
        if r.tool == NT:
            ok = r.value <= 1.1 and (rs is None or r.wall < rs)
            r.goal = f"<= 1.1x ideal and < rsync: {verdict(ok)}"
            if ctx.settings.quick:
                r.goal += " (quick mode: less data, so the fixed connection setup weighs more)"
        if rs and r.tool != RSYNC:
            r.note += f"; {r.wall / rs:.2f}x rsync's wall"
    return out


def scenario_outages(ctx: Context, data: Path) -> list[Result]:
    s = ctx.settings
    label = "outages"
    out_ = s.outages
    files, total = tree_size(data)
    first = out_.period - out_.duration if out_.first is None else out_.first
    what = f"{S4} ({files} files, {human(total)}, 1 MB/s, down 3 s every 8 s from {first:g} s)"
    tuned = f"{ST} (reconnectionIntervalS=5)"
    tools: list[tuple[str, Callable[[], Result]]] = [
        (NT, lambda: nt_initial(ctx, data, "down", out_, label)),
        (RSYNC, lambda: rsync_initial(ctx, data, "down", out_, label)),
        (ST, lambda: syncthing_initial(ctx, data, "down", out_, label, s.syncthing_outage_timeout))]
    if s.variants:
        tools.append((tuned, lambda: syncthing_initial(ctx, data, "down", out_, label, s.syncthing_outage_timeout,
                                                       {"reconnectionIntervalS": "5"}, tuned)))
    out = run_tools(what, tools)
    assert SAT.down
    exact = phase_ideal(total / SAT.down, out_)
    for r in out:
        if r.wall is not None and r.ideal:
            r.value = r.wall / r.ideal
            r.note += (f"; {r.wall / exact:.2f}x the phase-exact ideal ({exact:.1f} s: when the link's actual "
                       f"uptime since the first connection reaches data / 1 MB/s)")
        moved, data_total = r.extra.get("moved"), r.extra.get("total")
        ratio = moved / data_total if moved and data_total else None
        if r.tool == NT:
            ok_wall = r.value is not None and r.value <= 1.3
            ok_bytes = ratio is not None and ratio <= 1.05
            r.goal = f"wall <= 1.3x ideal for uptime: {verdict(ok_wall)}; bytes <= 1.05x data: {verdict(ok_bytes)}"
    return out


# -- scenario 2: near time ---------------------------------------------------------------------


@dataclass
class NearRuns:
    """Near-time runs of one tool: seconds and link bytes (up, down) per direction,
    ``up`` meaning ship -> hub."""

    times: dict[str, list[float]] = field(default_factory=lambda: {"up": [], "down": []})
    moved: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"up": [], "down": []})
    watcher_delay: int | None = None

    def add(self, direction: str, seconds: float, moved: tuple[int, int]) -> None:
        self.times[direction].append(seconds)
        self.moved[direction].append(moved)


def _ql(path: Path, seed: int) -> Path:
    return sampledata.quicklook_png(path, seed=seed, target_bytes=200_000, title=f"quicklook {seed}")


def nt_near(ctx: Context, reps: int) -> NearRuns:
    root = ctx.dir("nt-near")
    sites = ctx.pair(root)
    hub, link = sites.start_link()
    ship = sites.connect_ship(link, push=("quicklook",), prefetch=("quicklook",))
    files = root / "files"
    files.mkdir()
    # warm up both directions (not timed)
    for site, other, owner in ((ship, hub, SHIP), (hub, ship, HUB)):
        p = sampledata.quicklook_png(files / f"warm-{owner}.png", seed=1, target_bytes=20_000)
        nt.publish(p, name=f"quicklooks/{p.name}", topics=["quicklook"], server=site.url, token=site.token,
                   progress=False)
        wait_for(lambda p=p, other=other, owner=owner: holds(other, owner, f"quicklooks/{p.name}"), 60, "warm-up")
    runs = NearRuns()
    for i in range(reps):
        for site, other, owner, direction in ((ship, hub, SHIP, "up"), (hub, ship, HUB, "down")):
            p = _ql(files / f"ql-{owner}-{i}.png", seed=100 + i + (50 if owner == HUB else 0))
            name = f"quicklooks/{p.name}"
            time.sleep(1.0)
            link.reset_counters()
            t0 = time.monotonic()
            nt.publish(p, name=name, topics=["quicklook"], server=site.url, token=site.token, progress=False)
            wait_for(lambda other=other, owner=owner, name=name: holds(other, owner, name), 60,
                     "quicklook at the other side", 0.02)
            seconds = time.monotonic() - t0
            got = requests.get(f"{other.url}/data/{owner}/{name}", timeout=30).content
            if got != p.read_bytes():
                raise AssertionError("quicklook differs")
            time.sleep(SETTLE)
            runs.add(direction, seconds, link.bytes())
    link.stop()
    sites.stop()
    return runs


def rsync_near(ctx: Context, reps: int) -> NearRuns:
    root = ctx.dir("rsync-near")
    hub_dir, ship_dir = root / "hub", root / "ship"
    for d in (hub_dir, ship_dir):
        d.mkdir()
    for k in range(5):  # a folder that already holds some quicklooks on both sides
        p = sampledata.quicklook_png(hub_dir / f"old-{k}.png", seed=500 + k, target_bytes=20_000)
        shutil.copy2(p, ship_dir / p.name)
    daemon = RsyncDaemon(ctx.procs, hub_dir, root)
    link = Link(daemon.port, SAT)
    link.start()
    ctx.procs.on_close(link.stop)
    url = RsyncDaemon.url(link.port)
    runs = NearRuns()
    for i in range(reps):
        for direction in ("up", "down"):
            src = ship_dir if direction == "up" else hub_dir
            p = _ql(src / f"ql-{direction}-{i}.png", seed=100 + i + (50 if direction == "down" else 0))
            link.reset_counters()
            args = ["-a", f"{ship_dir}/", url] if direction == "up" else ["-a", url, f"{ship_dir}/"]
            run = rsync(args, 120)  # started the moment the file is there: the best case
            if run.returncode != 0:
                raise RuntimeError(f"rsync exited {run.returncode}: {run.output[-300:]}")
            other = hub_dir if direction == "up" else ship_dir
            if (other / p.name).read_bytes() != p.read_bytes():
                raise AssertionError("rsync copy differs")
            runs.add(direction, run.wall, link.bytes())
    link.stop()
    return runs


def syncthing_near(ctx: Context, reps: int, watcher_delay: int | None = None) -> NearRuns:
    root = ctx.dir(f"st-near-{watcher_delay}")
    hub_dir, ship_dir = root / "hub", root / "ship"
    for d in (hub_dir, ship_dir):
        d.mkdir()
    for k in range(5):
        p = sampledata.quicklook_png(hub_dir / f"old-{k}.png", seed=500 + k, target_bytes=20_000)
    pair = syncthing_pair(ctx.procs, root, hub_dir, ship_dir, watcher_delay=watcher_delay)
    try:
        wait_for(lambda: pair.ship.idle_with(5), 120, "Syncthing seeded", 0.2)
        staging = root / "staging"
        staging.mkdir()
        runs = NearRuns()
        for i in range(reps):
            for direction in ("up", "down"):
                src, dst = (ship_dir, hub_dir) if direction == "up" else (hub_dir, ship_dir)
                p = _ql(staging / f"ql-{direction}-{i}.png", seed=100 + i + (50 if direction == "down" else 0))
                data = p.read_bytes()
                time.sleep(1.0)
                pair.link.reset_counters()
                t0 = time.monotonic()
                os.replace(p, src / p.name)  # the file appears whole, as a finished plot would

                def arrived(target: Path = dst / p.name, data: bytes = data) -> bool:
                    return target.exists() and target.stat().st_size == len(data) and target.read_bytes() == data

                wait_for(arrived, 120, "Syncthing delivered the quicklook", 0.02)
                seconds = time.monotonic() - t0
                time.sleep(SETTLE)
                runs.add(direction, seconds, pair.link.bytes())
        runs.watcher_delay = pair.ship.watcher_delay
    finally:
        pair.stop()
    return runs


def scenario_near(ctx: Context) -> list[Result]:
    reps = ctx.settings.reps
    out: list[Result] = []

    def add(tool: str, runs: NearRuns, extra: str = "") -> None:
        for scenario, key, direction in ((S2_UP, "up", "ship -> hub"), (S2_DOWN, "down", "hub -> ship")):
            times, moved = runs.times[key], runs.moved[key]
            median = statistics.median(times)
            goal = ""
            if tool == NT:  # down: the campaign's bar (rsync 5.5 s, Syncthing 1.3 s); up: the issue's
                limit = 0.8 if scenario == S2_DOWN else 5.0
                goal = f"<= {limit:g} s: {verdict(median <= limit)}"
            out.append(Result(f"{scenario} ({direction}, median of {len(times)})", tool, median,
                              int(statistics.median(u for u, _ in moved)),
                              int(statistics.median(d for _, d in moved)),
                              goal=goal, value=median,
                              note=f"runs {', '.join(f'{t:.2f}' for t in times)} s (bytes: median per file){extra}"))

    try:
        add(NT, nt_near(ctx, reps), "; from the publish call until the other server holds it "
            "(up: pushed topic; down: topic the ship prefetches)")
    except Exception as exc:  # noqa: BLE001
        out.append(failed(S2_UP, NT, exc))
    try:
        add(RSYNC, rsync_near(ctx, reps), "; one rsync run started the moment the file appeared (best case); "
            "a user's `while true; do rsync ...; sleep N; done` adds N/2 s on average")
    except Exception as exc:  # noqa: BLE001
        out.append(failed(S2_UP, RSYNC, exc))
    try:
        runs = syncthing_near(ctx, reps)
        add(ST, runs, f"; filesystem watcher on, default fsWatcherDelayS={runs.watcher_delay}")
    except Exception as exc:  # noqa: BLE001
        out.append(failed(S2_UP, ST, exc))
    if ctx.settings.variants:
        try:
            add(f"{ST} (fsWatcherDelayS=1)", syncthing_near(ctx, reps, watcher_delay=1),
                "; watcher delay tuned down from the default 10 s")
        except Exception as exc:  # noqa: BLE001
            out.append(failed(S2_UP, f"{ST} (fsWatcherDelayS=1)", exc))
    return out


# -- scenario 3: growth ------------------------------------------------------------------------


@dataclass
class Growth:
    """One growing item: how to write version 1 and version 2 into a folder."""

    key: str
    scenario: str
    name: str  # file or folder name
    write: Callable[[Path, int], None]  # (folder, version)
    dataset: Callable[[int], Any] | None = None  # for zarr: the xarray.Dataset of a version

    def path(self, folder: Path) -> Path:
        return folder / self.name


def growth_items(days: int, workdir: Path) -> list[Growth]:
    from eurec4a_nt.publishing import (
        _zarr_encoding,  # the chunking eurec4a-nt gives a dataset
    )

    big = workdir / "big-v1.bin"
    if not big.exists():
        sampledata.raw_file(big, size=8 << 20, seed=9)

    def nc(folder: Path, v: int) -> None:
        sampledata.grow_netcdf(folder / "series.nc", seed=3, days=days + v - 1)

    def inserted(folder: Path, v: int) -> None:
        data = big.read_bytes()
        if v == 2:
            data = data[:4096] + bytes(range(100)) + data[4096:]
        tmp = folder / ".big.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / "radar.bin")

    def dataset(v: int) -> Any:
        return sampledata.timeseries(seed=4, hours=24 + v - 1)

    def zarr_(folder: Path, v: int) -> None:
        ds = dataset(v)
        ds.to_zarr(folder / "series.zarr", mode="w", encoding=_zarr_encoding(ds), zarr_format=3,
                   consolidated=False)

    return [Growth("a", f"{S3A} ({days} -> {days + 1} days, {human(1.2e6 * days)} -> {human(1.2e6 * (days + 1))})",
                   "series.nc", nc),
            Growth("b", f"{S3B} (at offset 4096)", "radar.bin", inserted),
            Growth("c", f"{S3C} (zarr timeseries 24 -> 25 h, same entry)", "series.zarr", zarr_, dataset)]


def nt_growth(ctx: Context, items: list[Growth]) -> dict[str, Result]:
    """Hub -> ship (the ship prefetches ``processed``); bytes of publishing version 2."""
    root = ctx.dir("nt-growth")
    sites = Sites(ctx, root)
    hub, link = sites.start_link()
    ship = sites.connect_ship(link, prefetch=("processed",))
    files = root / "files"
    out: dict[str, Result] = {}

    def publish(item: Growth, v: int) -> str:
        folder = files / f"v{v}"
        folder.mkdir(parents=True, exist_ok=True)
        obj: Any = item.dataset(v) if item.dataset else (item.write(folder, v) or item.path(folder))
        e = nt.publish(obj, name=f"growth/{item.name}", topics=["processed"], server=hub.url,
                       token=hub.token, progress=False)
        return e.root

    roots = {item.key: publish(item, 1) for item in items}
    for item in items:
        wait_for(lambda item=item: holds(ship, HUB, f"growth/{item.name}", roots[item.key]), 300, "version 1")
    for item in items:
        time.sleep(1.0)
        link.reset_counters()
        t0 = time.monotonic()
        root2 = publish(item, 2)
        wait_for(lambda name=f"growth/{item.name}", root2=root2: holds(ship, HUB, name, root2), 300, "version 2", 0.05)
        wall = time.monotonic() - t0
        time.sleep(SETTLE)
        up, down = link.bytes()
        if item.dataset is None:
            got = requests.get(f"{ship.url}/data/{HUB}/growth/{item.name}", timeout=60).content
            if got != item.path(files / "v2").read_bytes():
                raise AssertionError(f"{item.name} v2 differs at the ship")
        out[item.key] = Result(item.scenario, NT, wall, up, down, value=up + down,
                               note="from publish at the hub until the ship holds the new version; "
                                    "changed blocks sent as zstd deltas against the old ones")
    link.stop()
    sites.stop()
    return out


def rsync_growth(ctx: Context, items: list[Growth], compress: bool) -> dict[str, Result]:
    """rsync pull of the hub's folder after each item got its version 2. Version 1 is
    placed at the ship by a local copy (times preserved), the state an earlier rsync
    run leaves."""
    tag = "rsync-z" if compress else "rsync"
    root = ctx.dir(f"{tag}-growth")
    hub_dir, ship_dir = root / "hub", root / "ship"
    hub_dir.mkdir()
    for item in items:
        item.write(hub_dir, 1)
    shutil.copytree(hub_dir, ship_dir, copy_function=shutil.copy2)
    daemon = RsyncDaemon(ctx.procs, hub_dir, root)
    link = Link(daemon.port, SAT)
    link.start()
    ctx.procs.on_close(link.stop)
    url = RsyncDaemon.url(link.port)
    flags = ["-a", "--no-whole-file", *(["-z"] if compress else [])]
    out = {}
    for item in items:
        item.write(hub_dir, 2)
        link.reset_counters()
        run = rsync([*flags, "--delete", url, f"{ship_dir}/"], 300)
        if run.returncode != 0:
            raise RuntimeError(f"rsync exited {run.returncode}: {run.output[-300:]}")
        up, down = link.bytes()
        if tree_digest(ship_dir) != tree_digest(hub_dir):
            raise AssertionError("rsync copy differs")
        st = run.stats
        out[item.key] = Result(item.scenario, "rsync -z" if compress else RSYNC, run.wall, up, down,
                               value=up + down,
                               note=f"`rsync {' '.join(flags)}`; --stats: literal {human(st.get('literal'))}, "
                                    f"matched {human(st.get('matched'))}, sent {human(st.get('sent'))}, "
                                    f"received {human(st.get('received'))}")
    link.stop()
    return out


def syncthing_growth(ctx: Context, items: list[Growth]) -> dict[str, Result]:
    root = ctx.dir("st-growth")
    hub_dir, ship_dir = root / "hub", root / "ship"
    hub_dir.mkdir()
    for item in items:
        item.write(hub_dir, 1)
    files, _ = tree_size(hub_dir)
    pair = syncthing_pair(ctx.procs, root, hub_dir, ship_dir)
    out = {}
    try:
        wait_for(lambda: pair.ship.idle_with(files), 600, "Syncthing seeded", 0.2)
        for item in items:
            time.sleep(1.0)
            item.write(hub_dir, 2)
            files, _ = tree_size(hub_dir)
            pair.link.reset_counters()
            t0 = time.monotonic()
            pair.hub.rescan()
            want = tree_digest(hub_dir)
            wait_for(lambda files=files, want=want: pair.ship.idle_with(files) and tree_digest(ship_dir) == want, 300,
                     "Syncthing delivered version 2", 0.2)
            wall = time.monotonic() - t0
            time.sleep(SETTLE)
            up, down = pair.link.bytes()
            out[item.key] = Result(item.scenario, ST, wall, up, down, value=up + down,
                                   note="rescan triggered through the REST API right after the write; "
                                        "128 KiB blocks (weak-hash rolling search for shifted blocks)")
    finally:
        pair.stop()
    return out


def scenario_growth(ctx: Context) -> list[Result]:
    items = growth_items(ctx.settings.growth_days, ctx.dir("growth-data"))
    per_tool: dict[str, dict[str, Result]] = {}
    tools: list[tuple[str, Callable[[], dict[str, Result]]]] = [
        (NT, lambda: nt_growth(ctx, items)), (RSYNC, lambda: rsync_growth(ctx, items, False)),
        ("rsync -z", lambda: rsync_growth(ctx, items, True)), (ST, lambda: syncthing_growth(ctx, items))]
    if not ctx.settings.variants:
        tools = [t for t in tools if t[0] != "rsync -z"]
    for tool, fn in tools:
        try:
            per_tool[tool] = fn()
        except Exception as exc:  # noqa: BLE001
            per_tool[tool] = {item.key: failed(item.scenario, tool, exc) for item in items}
    out = []
    for item in items:
        rs = per_tool[RSYNC][item.key].value
        for tool in per_tool:
            r = per_tool[tool][item.key]
            if tool == NT and r.value is not None:
                r.goal = f"<= rsync's bytes ({human(rs)}): {verdict(rs is not None and r.value <= rs)}"
            if tool != RSYNC and r.value is not None and rs:
                r.note += f"; {r.value / rs:.2f}x rsync's bytes"
            out.append(r)
    return out


# -- scenario 5: selective and lazy ------------------------------------------------------------

_READER = """
import json, sys, time
import xarray as xr
url, var, day = sys.argv[1:4]
t = time.monotonic()
ds = xr.open_zarr(url, consolidated=False)
value = float(ds[var].sel(time=day).mean().compute())
print(json.dumps({"wall": time.monotonic() - t, "value": value}))
"""


def touched_keys(ds: Any, var: str, day: str, folder: Path) -> tuple[set[str], dict[str, int]]:
    """The zarr keys xarray reads to compute ``ds[var].sel(time=day).mean()``, from a local
    copy written with the same encoding eurec4a-nt uses, and every key's size."""
    import xarray as xr
    from zarr.storage import LocalStore, WrapperStore

    from eurec4a_nt.publishing import _zarr_encoding

    path = folder / "local.zarr"
    ds.to_zarr(path, mode="w", encoding=_zarr_encoding(ds), zarr_format=3, consolidated=False)

    class Recording(WrapperStore):  # type: ignore[type-arg]
        def __init__(self, store: Any) -> None:
            super().__init__(store)
            self.keys: set[str] = set()

        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            value = await self._store.get(key, prototype, byte_range)
            if value is not None:
                self.keys.add(key)
            return value

    store = Recording(LocalStore(path, read_only=True))
    float(xr.open_zarr(store, consolidated=False)[var].sel(time=day).mean().compute())
    sizes = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()}
    return store.keys, sizes


def scenario_lazy(ctx: Context) -> list[Result]:
    days = ctx.settings.lazy_days
    var, day = "dbz", "2020-01-25"
    what = f"({days}-day zarr at the ship, topic raw not pushed; hub reader: {var} on {day}, mean)"
    root = ctx.dir("nt-lazy")
    try:
        ds = sampledata.timeseries(seed=11, hours=24 * days)
        keys, sizes = touched_keys(ds, var, day, root)
        touched = sum(sizes[k] for k in keys)
        store_size = sum(sizes.values())
        sites = Sites(ctx, root)
        hub, link = sites.start_link()
        ship = sites.connect_ship(link, push=("quicklook",))
        name = "raw/cloud-radar-series"
        nt.publish(ds, name=name, topics=["raw"], server=ship.url, token=ship.token, progress=False)
        wait_for(lambda: name in entries(hub, SHIP), 60, "entry known at the hub")
        time.sleep(SETTLE)
        url = f"{hub.url}/data/{SHIP}/{name}"
        rows = []
        for reader in (1, 2):
            link.reset_counters()
            done = subprocess.run([sys.executable, "-c", _READER, url, var, day], capture_output=True,
                                  text=True, timeout=300, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"reader {reader} failed: {done.stderr[-500:]}")
            answer = json.loads(done.stdout.strip().splitlines()[-1])
            time.sleep(SETTLE)
            up, down = link.bytes()
            rows.append((answer, up, down))
        link.stop()
        sites.stop()
        (a1, up1, down1), (a2, up2, down2) = rows
        if abs(a1["value"] - a2["value"]) > 1e-9:
            raise AssertionError("the two readers disagree")
        ratio = (up1 + down1) / touched
        r1 = Result(f"{S5A} {what}", NT, a1["wall"], up1, down1,
                    goal=f"<= 1.2x chunks touched: {verdict(ratio <= 1.2)}", value=ratio,
                    note=f"{human(up1 + down1)} over the link vs {human(touched)} touched ({len(keys)} keys: "
                         f"metadata, coordinates, {sum(1 for k in keys if k.startswith(var + '/c/'))} {var} chunks); "
                         f"whole store {human(store_size)} in {len(sizes)} keys ({human(ds.nbytes)} uncompressed); "
                         f"the zarr manifest (the entry's root) is fetched too; the wall is mostly round trips: "
                         f"zarr asks in about 6 dependent rounds (listing, group and array metadata, "
                         f"coordinates, chunks), each a lazy fetch of ~1 RTT")
        r2 = Result(f"{S5B} {what}", NT, a2["wall"], up2, down2, goal=f"0 B: {verdict(up2 + down2 == 0)}",
                    value=up2 + down2, note="a second reader process at the hub, same read")
        rs = Result(f"{S5A} {what}", RSYNC, None, store_size, None, value=store_size / touched,
                    note=f"not run: rsync has no lazy read; the reader needs the whole store copied first "
                         f"({human(store_size)} up plus file-list overhead), or must know which chunk files to pick")
        return [r1, r2, rs]
    except Exception as exc:  # noqa: BLE001
        return [failed(f"{S5A} {what}", NT, exc)]


# -- scenario 6: catalog scale -----------------------------------------------------------------


def tiny_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"note-{i:05d}.txt"
        p.write_text(f"EUREC4A ship log, note {i}: CTD cast {i % 7}, wind {i % 13} m/s\n")
        paths.append(p)
    return paths


def nt_catalog(ctx: Context, n: int) -> Result:
    root = ctx.dir("nt-catalog")
    sites = Sites(ctx, root)
    hub, link = sites.start_link()
    ship = sites.connect_ship(link, push=("quicklook",))
    paths = tiny_files(root / "notes", n)
    batches = [paths[i:i + 1000] for i in range(0, n, 1000)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda kb: nt.publish(kb[1], name=f"notes/b{kb[0]:02d}", topics=["logbook"],
                                            server=ship.url, token=ship.token, progress=False),
                      enumerate(batches)))
    publish_time = time.monotonic() - t0

    def hub_entries() -> int:
        return int(hub.status()["sites"].get(SHIP, {}).get("entries", 0))

    wait_for(lambda: hub_entries() == n, 600, f"{n} entries at the hub", 0.5)
    catch_up = time.monotonic() - t0
    time.sleep(SETTLE)
    one = root / "one-more.txt"
    one.write_text("EUREC4A ship log, one more note\n")
    link.reset_counters()
    t1 = time.monotonic()
    nt.publish(one, name="notes/one-more.txt", topics=["logbook"], server=ship.url, token=ship.token,
               progress=False)
    wait_for(lambda: hub_entries() == n + 1, 60, "the new entry at the hub", 0.02)
    wall = time.monotonic() - t1
    time.sleep(SETTLE)
    up, down = link.bytes()
    link.stop()
    sites.stop()
    total = up + down
    return Result("", NT, wall, up, down, goal=f"< 10 KB: {verdict(total < 10_000)}", value=total,
                  note=f"{n} entries published in {len(batches)} commits ({publish_time:.0f} s), at the hub after "
                       f"{catch_up:.0f} s; wall = publish until the hub lists it; logbook topic not pushed")


def rsync_catalog(ctx: Context, n: int) -> Result:
    root = ctx.dir("rsync-catalog")
    ship_dir = root / "ship"
    tiny_files(ship_dir, n)
    shutil.copytree(ship_dir, root / "hub", copy_function=shutil.copy2)
    daemon = RsyncDaemon(ctx.procs, root / "hub", root)
    link = Link(daemon.port, SAT)
    link.start()
    ctx.procs.on_close(link.stop)
    (ship_dir / "one-more.txt").write_text("EUREC4A ship log, one more note\n")
    link.reset_counters()
    run = rsync(["-a", f"{ship_dir}/", RsyncDaemon.url(link.port)], 300)
    up, down = link.bytes()
    link.stop()
    if run.returncode != 0 or not (root / "hub" / "one-more.txt").exists():
        raise RuntimeError(f"rsync exited {run.returncode}: {run.output[-300:]}")
    return Result("", RSYNC, run.wall, up, down, value=up + down,
                  note=f"`rsync -a` push of the folder of {n + 1} files (the hub's copy made locally): "
                       "the whole file list crosses the link every run")


def syncthing_catalog(ctx: Context, n: int) -> Result:
    root = ctx.dir("st-catalog")
    ship_dir, hub_dir = root / "ship", root / "hub"
    tiny_files(ship_dir, n)
    pair = syncthing_pair(ctx.procs, root, hub_dir, ship_dir)
    try:
        t0 = time.monotonic()
        wait_for(lambda: pair.hub.idle_with(n), 900, f"{n} files at the Syncthing hub", 0.5)
        seeded = time.monotonic() - t0
        time.sleep(SETTLE)
        pair.link.reset_counters()
        t1 = time.monotonic()
        (ship_dir / "one-more.txt").write_text("EUREC4A ship log, one more note\n")
        pair.ship.rescan()
        wait_for(lambda: (hub_dir / "one-more.txt").exists() and pair.hub.idle_with(n + 1), 120,
                 "the new file at the hub", 0.05)
        wall = time.monotonic() - t1
        time.sleep(SETTLE)
        up, down = pair.link.bytes()
    finally:
        pair.stop()
    return Result("", ST, wall, up, down, value=up + down,
                  note=f"{n} files synced first ({seeded:.0f} s); then one more file, rescan via REST; "
                       "delta index update")


def scenario_catalog(ctx: Context) -> list[Result]:
    n = ctx.settings.catalog_entries
    what = f"{S6} ({n} entries at the ship)"
    return run_tools(what, ((NT, lambda: nt_catalog(ctx, n)), (RSYNC, lambda: rsync_catalog(ctx, n)),
                            (ST, lambda: syncthing_catalog(ctx, n))))


# -- plots -------------------------------------------------------------------------------------


def plot(ctx: Context, key: str, title: str, filename: str, outages: Outages | None) -> None:
    """Cumulative bytes hub -> ship over time for every tool of a scenario; with outages a
    second panel zooms on the first tools to finish. The timelines are kept as JSON too."""
    lines = ctx.timelines.get(key)
    if not lines:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (ctx.workdir / f"timelines-{key}.json").write_text(json.dumps(
        {tool: {"wall": wall, "timeline": timeline} for tool, (timeline, wall) in lines.items()}))
    total = ctx.totals.get(key)
    walls = sorted(wall for _, wall in lines.values() if wall)
    spans = [None] if not outages else [walls[0] * 2.2 if walls else None, None]  # zoom on the fastest
    fig, axes = plt.subplots(1, len(spans), figsize=(8 * len(spans), 4.5), dpi=100, squeeze=False)
    for ax, span in zip(axes[0], spans, strict=True):
        end = 0.0
        for tool, (timeline, wall) in lines.items():
            cut = [(t, down) for t, _, down in timeline if t <= wall + 1.0]
            if not cut:
                continue
            ax.plot([0.0] + [t for t, _ in cut], [0.0] + [d / 1e6 for _, d in cut],
                    label=f"{tool} ({wall:.1f} s)" if wall else tool)
            end = max(end, cut[-1][0])
        assert SAT.down
        if total:
            ideal = total / SAT.down
            ax.plot([0, ideal], [0, total / 1e6], "k:", label="ideal: data at 1 MB/s")
            if outages:
                ax.plot([0, ideal / UPTIME], [0, total / 1e6], "k--", lw=0.8,
                        label=f"ideal for the uptime ({UPTIME:.0%} of 1 MB/s on average)")
                finish = phase_ideal(ideal, outages)
                ts = [i * 0.05 for i in range(int(finish / 0.05) + 2)]
                ax.plot(ts, [min(total, SAT.down * _uptime(t, outages)) / 1e6 for t in ts], "k-", lw=0.6,
                        alpha=0.6, label=f"ideal with these outages ({finish:.1f} s)")
            ax.axhline(total / 1e6, color="grey", lw=0.5)
        if outages:
            start = outages.period - outages.duration if outages.first is None else outages.first
            while start < (span or end):
                ax.axvspan(start, start + outages.duration, color="red", alpha=0.12, lw=0)
                start += outages.period
        if span:
            ax.set_xlim(0, span)
            ax.set_title(title + " (zoom)")
        else:
            ax.set_title(title)
        ax.set_xlabel("seconds since the first connection through the link")
        ax.set_ylabel("MB over the link, hub -> ship (cumulative)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    PLOTS.mkdir(exist_ok=True)
    fig.savefig(PLOTS / filename)
    plt.close(fig)


# -- entry points ------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so every process started is stopped."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_LOAD: list[tuple[str, tuple[float, float, float]]] = []  # (scenario, load average) during the run


def log(msg: str) -> None:
    print(f"[wan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(quick: bool, workdir: Path) -> list[Result]:
    """All WAN scenarios; ``quick`` uses smaller data and fewer repetitions."""
    settings = Settings.make(quick)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with _sigterm_as_interrupt(), Processes() as procs:
        ctx = Context(settings, workdir, procs)
        data = workdir / "campaign"
        if not data.exists():
            sampledata.campaign_files(data, seed=0, small_files=settings.small_files,
                                      small_total=settings.small_total, big_file=settings.big_file)
        outage_data = data
        if settings.outage_data:
            outage_data = workdir / "campaign-outages"
            if not outage_data.exists():
                files, small, big = settings.outage_data
                sampledata.campaign_files(outage_data, seed=1, small_files=files, small_total=small, big_file=big)
        steps: list[tuple[str, Callable[[], list[Result]]]] = [
            ("1 initial sync down", lambda: scenario_initial(ctx, data, "down")),
        ]
        if settings.uplink_initial:
            steps.append(("1 initial sync up", lambda: scenario_initial(ctx, data, "up")))
        steps += [
            ("2 near time", lambda: scenario_near(ctx)),
            ("3 growth", lambda: scenario_growth(ctx)),
            ("4 outages", lambda: scenario_outages(ctx, outage_data)),
            ("5 lazy", lambda: scenario_lazy(ctx)),
            ("6 catalog", lambda: scenario_catalog(ctx)),
        ]
        for title, step in steps:
            _LOAD.append((title.split(" ...")[0], os.getloadavg()))
            log(f"scenario {title} ... (load average {os.getloadavg()[0]:.1f})")
            t = time.monotonic()
            rows = step()
            ctx.results += rows
            procs.close()  # anything a scenario left running
            for r in rows:
                log(f"  {r.tool:12} wall {r.wall if r.wall is None else round(r.wall, 2)} "
                    f"up {human(r.sent_up)} down {human(r.sent_down)} value {r.value} {r.goal} {r.note[:120]}")
            log(f"scenario {title} took {time.monotonic() - t:.0f} s")
            if title == "1 initial sync down":
                plot(ctx, "initial-down", "Initial sync hub -> ship, 1 MB/s, 350 ms one way",
                     "wan-initial-sync.png", None)
            if title == "4 outages":
                plot(ctx, "outages", "Initial sync hub -> ship, link down 3 s every 8 s (red)",
                     "wan-outages.png", settings.outages)
        return ctx.results


def _find(results: list[Result], prefix: str, tool: str) -> Result | None:
    return next((r for r in results if r.scenario.startswith(prefix) and r.tool == tool), None)


def headline(results: list[Result]) -> list[str]:
    """The four headline figures as a Markdown table: eurec4a-nt, rsync, Syncthing, goal."""
    def ratio(r: Result | None) -> str:
        if r is None:
            return "not run"
        if r.value is None:
            return "did not finish" if "NOT COMPLETE" in r.note else ("failed" if "FAILED" in r.note else "n/a")
        return f"{r.value:.2f}x ({r.wall:.1f} s)" if r.wall else f"{r.value:.2f}x"

    def secs(r: Result | None, suffix: str = "") -> str:
        if r is None:
            return "not run"
        return "failed" if r.value is None else f"{r.value:.1f} s{suffix}"

    def size(r: Result | None) -> str:
        if r is None:
            return "not run"
        return "failed" if r.value is None else human(r.value)

    rows = [
        ("first sync, wall / ideal", S1_DOWN, ratio, ratio, ratio, "<= 1.1x, ahead of rsync"),
        ("outage (3 s every 8 s): wall / ideal for uptime", S4, ratio, ratio, ratio, "<= 1.3x (bytes <= 1.05x data)"),
        ("new 200 KB file until readable, hub -> ship (1 MB/s; median)", S2_DOWN, secs,
         lambda r: secs(r, " + loop interval"), secs, "<= 0.8 s"),
        ("new 200 KB file until readable, ship -> hub (250 KB/s; median)", S2_UP, secs,
         lambda r: secs(r, " + loop interval"), secs, "<= 5 s"),
        ("100 bytes inserted near the start of 8 MiB: bytes", S3B, size, size, size, "<= rsync"),
    ]
    load = ", ".join(f"{title}: {avg[0]:.1f}" for title, avg in _LOAD)
    lines = ["## WAN headline: eurec4a-nt, rsync and Syncthing on the same emulated satellite link",
             "", "1 MB/s down, 250 KB/s up, 350 ms one way; see the WAN rows below for every figure."
             + (f" 1-minute load average at the start of each scenario: {load}." if load else ""), "",
             "| figure | eurec4a-nt | rsync | Syncthing | goal |", "|---|---|---|---|---|"]
    for label, prefix, f_nt, f_rs, f_st, goal in rows:
        ours = _find(results, prefix, NT)
        mark = ""
        if ours is not None and ours.goal:
            mark = " (goal missed)" if "MISSED" in ours.goal else " (goal met)"
        lines.append(f"| {label} | {f_nt(ours)}{mark} | {f_rs(_find(results, prefix, RSYNC))} | "
                     f"{f_st(_find(results, prefix, ST))} | {goal} |")
    return lines
