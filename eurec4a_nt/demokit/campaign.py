"""A small campaign on one machine: a hub and sites dialling it over emulated links.

Each dialling site runs a real site server whose link goes through a
:class:`~eurec4a_nt.demokit.emulator.EmulatorThread` to the hub, so tests, benchmarks
and the demo see satellite bandwidth, delay and outages on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from .emulator import EmulatorThread, LinkProfile, Outages
from .sites import SiteProcess, make_sites


@dataclass
class Remote:
    """A site that dials the hub, and how its link is set up (``profile=None``: the
    site dials the hub's port directly, plain loopback)."""

    profile: LinkProfile | None = field(default_factory=LinkProfile.satellite)
    outages: Outages | None = None
    link: dict[str, Any] = field(default_factory=dict)


class Campaign:
    """A hub and remote sites. ``link`` settings are those of a links file
    (push, prefetch, budget, ...); the URL is filled in."""

    def __init__(self, root: Path, hub: str, remotes: dict[str, Remote],
                 hub_args: list[str] | None = None, ports: dict[str, int] | None = None) -> None:
        self.root = Path(root)
        self.remotes = remotes
        self.ports = ports or {}
        if not (self.root / "keyring.yaml").exists():
            make_sites(self.root, [hub, *remotes])
        self.hub = SiteProcess(self.root / hub, args=hub_args or [], port=self.ports.get(hub))
        self.sites: dict[str, SiteProcess] = {hub: self.hub}
        self.links: dict[str, EmulatorThread] = {}

    def start(self) -> Campaign:
        self.hub.start()
        for name in self.remotes:
            self.start_remote(name)
        return self

    def start_remote(self, name: str) -> SiteProcess:
        """(Re)start a remote site and its emulated link."""
        remote = self.remotes[name]
        if remote.profile is not None and name not in self.links:
            self.links[name] = EmulatorThread(self.hub.port, remote.profile, outages=remote.outages)
            self.links[name].start()
        links_file = self.root / f"{name}-links.yaml"
        port = self.links[name].port if name in self.links else self.hub.port
        body = {"url": f"http://127.0.0.1:{port}", **remote.link}
        links_file.write_text(yaml.safe_dump({"links": [body]}))
        site = self.sites.get(name) or SiteProcess(self.root / name, args=["--links", str(links_file)],
                                                   port=self.ports.get(name))
        self.sites[name] = site
        return site.start()

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()
        for link in self.links.values():
            link.stop()

    def __enter__(self) -> Campaign:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connected(self, name: str) -> bool:
        """Whether the remote's link to the hub is up."""
        status = self.sites[name].status()
        return any(link.get("connected") for link in status["links"])

    def wait_connected(self, timeout: float = 20.0) -> None:
        wait_until(lambda: all(self.connected(n) for n in self.remotes), timeout, "links up")


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
               errors: tuple[type[Exception], ...] = (requests.RequestException,)) -> Any:
    """Poll ``check`` until it returns something true (an exception among ``errors``
    counts as not yet); raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except errors:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
