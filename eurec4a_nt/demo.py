"""``eurec4a-nt demo``: a small campaign on this machine.

The operations centre (OPS) runs the hub; RV-Meteor and RV-Merian dial it over
emulated satellite links (1 MB/s down, 250 KB/s up, 700 ms round trip, dropping for a
few seconds now and then) and the Barbados Cloud Observatory (BCO) over a faster one.
The sites publish soundings, quicklooks, raw radar data and a flight plan over time;
the terminal shows quicklooks arriving at OPS in near time while raw data stays on
the ships. Every site's page is on http://127.0.0.1:<port>/.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests

from .api import publish
from .demokit import sampledata
from .demokit.campaign import Campaign, Remote
from .demokit.emulator import LinkProfile, Outages
from .entries import Entry
from .series import stamp_of

#: The soundings the README opens (one, and their day as a series); published first.
EXAMPLE_SONDES = ("sondes/20200202T1045.nc", "sondes/20200202T1445.nc")
EXAMPLE_SONDE = EXAMPLE_SONDES[0]
#: The ships, which dial OPS; OPS publishes flight plans for both.
SHIPS = ("RV-Meteor", "RV-Merian")
SHIP_LINK = {"push": ["quicklook", "sondes", "planning"], "prefetch": ["planning", "quicklook"],
             "budget": "200MB", "essential": ["planning", "quicklook"]}
BCO_LINK = {"push": ["quicklook", "processed"], "prefetch": ["planning"]}


@dataclass
class Published:
    site: str
    name: str
    topic: str
    size: int
    at: float


def _remotes() -> dict[str, Remote]:
    ship = LinkProfile.satellite()
    return {
        "RV-Meteor": Remote(ship, Outages(period=45, duration=6, first=30), SHIP_LINK),
        "RV-Merian": Remote(ship, Outages(period=60, duration=10, first=50), SHIP_LINK),
        "BCO": Remote(LinkProfile(down=500_000, up=1_000_000, delay=0.05), None, BCO_LINK),
    }


def _stamp(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class Demo:
    """Publishes campaign data on a schedule and reports what arrives where."""

    def __init__(self, campaign: Campaign, data: Path, speed: float) -> None:
        self.c = campaign
        self.data = data
        self.speed = speed
        self.published: list[Published] = []
        #: Seconds from publication until held, by (where, site, name).
        self.arrived: dict[tuple[str, str, str], float] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        print(f"{_stamp(time.time())}  {text}", flush=True)

    def publish(self, site: str, path: Path, name: str, topic: str) -> None:
        server = self.c.sites[site]
        start = time.time()
        entry = publish(path, name=name, topics=[topic], server=server.url, token=server.token, progress=False)
        assert isinstance(entry, Entry)  # one path: one entry
        with self.lock:
            self.published.append(Published(site, entry.name, topic, entry.size, start))
        where = ("stays on board" if topic == "raw" else
                 "on its way to the ships" if site == "OPS" else "on its way to OPS")
        self.say(f"{site:9} published {name} ({entry.size / 1e3:.0f} KB, {topic}): {where}")

    def schedule(self) -> None:
        """Publish the README's example soundings, then on a timeline, forever (until stopped)."""
        for seed, name in enumerate(EXAMPLE_SONDES, 1):
            self.publish("RV-Meteor", sampledata.sonde(self.data / f"example-{seed}.nc", seed=seed,
                                                       platform="RV-Meteor", launch_time=_launch(name)),
                         name, "sondes")
        for step in itertools.count():
            for site, make, name, topic in self._actions(step):
                if self.stop.wait(4 / self.speed):
                    return
                self.publish(site, make(), name, topic)

    def _actions(self, step: int) -> list[tuple[str, Callable[[], Path], str, str]]:
        """What the sites publish in one round: (site, file maker, entry name, topic)."""
        seed = int(time.time()) + step
        tag = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        d = self.data
        ship = SHIPS[step % 2]
        actions: list[tuple[str, Callable[[], Path], str, str]] = [
            (ship, partial(sampledata.quicklook_png, d / f"ql-{seed}.png", seed=seed, target_bytes=200_000,
                           title=f"{ship} cloud radar"), f"quicklooks/radar-{tag}.png", "quicklook"),
            (ship, partial(sampledata.sonde, d / f"sonde-{seed}.nc", seed=seed, platform=ship,
                           launch_time=_launch(tag)), f"sondes/{tag}.nc", "sondes"),
            (ship, partial(sampledata.raw_file, d / f"raw-{seed}.bin", size=5_000_000, seed=seed),
             f"raw/radar-{tag}.bin", "raw"),
            ("BCO", partial(sampledata.quicklook_png, d / f"bco-{seed}.png", seed=seed, target_bytes=150_000,
                            title="BCO lidar"), f"quicklooks/lidar-{tag}.png", "quicklook"),
        ]
        if step % 6 == 0:
            actions.append(("OPS", partial(sampledata.planning_pdf, d / f"plan-{seed}.pdf", seed=seed,
                                           target_bytes=1_000_000), f"planning/flight-plan-{tag}.pdf", "planning"))
        return actions

    def watch(self) -> None:
        """Report entries as they become fully held at OPS (or, for plans, at the ships)."""
        while not self.stop.wait(0.25):
            with self.lock:
                waiting = [(here, p) for p in self.published if p.topic != "raw"
                           for here in (SHIPS if p.site == "OPS" else ("OPS",))
                           if (here, p.site, p.name) not in self.arrived]
            for here, p in waiting:
                if _held(self.c.sites[here].url, p.site, p.name):
                    self.arrived[(here, p.site, p.name)] = time.time() - p.at
                    self.say(f"{here:9} has {p.site}/{p.name} after {time.time() - p.at:.1f} s")

    def summary(self) -> None:
        quick = [t for (_, _, name), t in self.arrived.items() if name.startswith("quicklooks/")]
        raw = [p for p in self.published if p.topic == "raw"]
        print()
        print(f"published {len(self.published)} entries; {len(self.arrived)} arrivals where they were wanted")
        if quick:
            print(f"quicklooks at OPS after {statistics.median(quick):.1f} s (median), "
                  f"{max(quick):.1f} s at most (links drop now and then)")
        raw_at_ops = sum(_held(self.c.hub.url, p.site, p.name) for p in raw)
        print(f"raw files: {len(raw)} published, {raw_at_ops} held at OPS (raw is fetched only on request)")
        for name, link in self.c.links.items():
            stats = link.stats
            print(f"link {name:9} up {stats['sent_up'] / 1e6:.1f} MB, down {stats['sent_down'] / 1e6:.1f} MB, "
                  f"{stats['resets']} drops")


def _launch(name: str) -> str:
    """The launch time a sounding's name says (``sondes/20200202T1045.nc``: 2020-02-02T10:45:00)."""
    stamp = stamp_of(name)
    assert stamp is not None, name
    return stamp.time.isoformat()


def _held(url: str, site: str, name: str) -> bool:
    try:
        answer = requests.get(f"{url}/api/sites/{site}/entries", params={"held": "1"}, timeout=5)
    except requests.RequestException:
        return False
    if answer.status_code != 200:
        return False
    return any(e["name"] == name and e["held"] == e["objects"] for e in answer.json()["entries"])


def run_demo(args: argparse.Namespace) -> int:
    """Start the campaign, run the timeline until ``--duration`` or Ctrl-C, then stop cleanly."""
    root = Path(args.dir) / "demo"
    root.mkdir(parents=True, exist_ok=True)
    sites = ("OPS", "RV-Meteor", "RV-Merian", "BCO")
    ports = {name: args.port + i for i, name in enumerate(sites)} if args.port else {}  # 0: any free
    campaign = Campaign(root, "OPS", _remotes(), ports=ports)
    print(__doc__.split("\n\n")[1].replace("\n", " ").strip())
    print()
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-demo-") as tmp, campaign:
        for name, site in campaign.sites.items():
            print(f"  {name:9} http://127.0.0.1:{site.port}/")
        print(f"\nopen the catalog in Python:\n  import eurec4a_nt as nt\n"
              f"  cat = nt.open_catalog(server=\"{campaign.hub.url}\")\n"
              f"  ds = cat[\"RV-Meteor\"][\"{EXAMPLE_SONDE}\"].to_dask()")
        print("Ctrl-C stops the demo.\n" if args.duration is None else f"running for {args.duration:.0f} s.\n",
              flush=True)
        demo = Demo(campaign, Path(tmp), args.speed)
        threads = [threading.Thread(target=demo.schedule, daemon=True),
                   threading.Thread(target=demo.watch, daemon=True)]
        for t in threads:
            t.start()
        try:
            demo.stop.wait(args.duration)
        except KeyboardInterrupt:
            print("\nstopping ...")
        demo.stop.set()
        for t in threads:
            t.join(30)
        demo.summary()
    return 0
