"""Site servers for the worked notebooks: a small campaign on a temporary folder, or
the server named by ``EUREC4A_NT_SERVER``.

``Demo()`` starts a hub (``OPS``) and sites that dial it over emulated satellite links
(:class:`~eurec4a_nt.demokit.campaign.Campaign`), each a real ``eurec4a-nt serve`` in a
subprocess on a loopback port. With ``EUREC4A_NT_SERVER`` set, nothing is started:
that server plays every site (with ``EUREC4A_NT_TOKEN`` to publish). ``demo.scratch``
is a temporary folder for the files a notebook makes. While a campaign runs, the
client's block cache (``EUREC4A_NT_CACHE``) is a fresh folder in it, so what crosses an
emulated link is what this run reads. :meth:`Demo.stop` stops what was started,
restores the cache setting and removes the folder; it also runs when the kernel exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..demokit.campaign import Campaign, Remote, wait_until
from ..demokit.emulator import LinkProfile

_CACHE = "EUREC4A_NT_CACHE"


@dataclass(frozen=True)
class DemoSite:
    """How a notebook reaches one site: its name, its server's URL and a write token."""

    name: str
    url: str
    token: str | None


class Demo:
    """A hub and remote sites; ``demo["RV-Meteor"]`` is a :class:`DemoSite`.

    ``remotes`` maps a site to its link settings (``push``, ``prefetch``, ... as in a
    links file); every remote dials the hub over an emulated satellite link.
    """

    def __init__(self, hub: str = "OPS", remotes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.campaign: Campaign | None = None
        self._cache_before: tuple[str | None] | None = None  # set while the cache is ours
        scratch = Path(tempfile.mkdtemp(prefix="eurec4a-nt-demo-"))
        self.scratch: Path | None = scratch
        atexit.register(self.stop)
        names = [hub, *(remotes or {})]
        server = os.environ.get("EUREC4A_NT_SERVER", "").rstrip("/")
        self.external = bool(server)
        if server:
            site = str(requests.get(server + "/health", timeout=30).json()["site"])
            token = os.environ.get("EUREC4A_NT_TOKEN")
            self.sites = {name: DemoSite(site, server, token) for name in names}
            self.hub = self.sites[hub]
            return
        self._cache_before = (os.environ.get(_CACHE),)
        os.environ[_CACHE] = str(scratch / "cache")
        links = {name: Remote(LinkProfile.satellite(), link=dict(settings))
                 for name, settings in (remotes or {}).items()}
        try:
            self.campaign = Campaign(scratch / "sites", hub, links)
            self.campaign.start()
            self.campaign.wait_connected(timeout=60)
        except BaseException:
            self.stop()
            raise
        self.sites = {name: DemoSite(name, proc.url, proc.token) for name, proc in self.campaign.sites.items()}
        self.hub = self.sites[hub]

    def __getitem__(self, name: str) -> DemoSite:
        return self.sites[name]

    def __repr__(self) -> str:
        where = "on EUREC4A_NT_SERVER" if self.external else f"in {self.scratch or '(stopped)'}"
        return f"<Demo {where}: " + ", ".join(f"{n} at {s.url}" for n, s in self.sites.items()) + ">"

    def link_bytes(self, name: str) -> int:
        """Bytes ``name`` has sent up its emulated link to the hub (0 without one)."""
        if self.campaign is None or name not in self.campaign.links:
            return 0
        return int(self.campaign.links[name].stats["sent_up"])

    def wait_until(self, check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
        """Poll ``check`` until it returns something true; raise TimeoutError after ``timeout`` s."""
        return wait_until(check, timeout, what, interval=0.2)

    def stop(self) -> None:
        """Stop the servers and links started here, restore the cache setting and remove
        the folder (idempotent)."""
        if self.campaign is not None:
            self.campaign.stop()
            self.campaign = None
        if self._cache_before is not None:
            before, self._cache_before = self._cache_before[0], None
            if before is None:
                os.environ.pop(_CACHE, None)
            else:
                os.environ[_CACHE] = before
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
        atexit.unregister(self.stop)
