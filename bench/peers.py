"""The peers the WAN benchmark compares against, and the plumbing every tool shares:

- :class:`Link`: an :class:`~eurec4a_nt.demokit.emulator.EmulatorThread` that notes when the
  first connection through it was accepted (the common start of every timed sync),
  restarts its counters and timeline then, and can start its outage schedule at that
  moment, so that every tool sees the same link phase.
- :class:`Processes`: every subprocess the benchmark starts, stopped on exit, on errors
  and on Ctrl-C (each in its own process group, so children go too).
- :class:`RsyncDaemon` and :func:`rsync`: ``rsync --daemon`` on 127.0.0.1 and the client.
- :class:`Syncthing`: one Syncthing instance with its own ``--home``, GUI/REST on a
  loopback port, discovery, relays, NAT and upgrades off; :func:`syncthing_pair` makes a
  hub and a ship instance sharing one folder, the ship dialling the hub through a link.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.emulator import EmulatorThread, LinkEmulator, LinkProfile, Outages
from eurec4a_nt.demokit.sites import free_port

# -- the link ------------------------------------------------------------------------------


class _TimedEmulator(LinkEmulator):
    """A LinkEmulator that restarts its counters at the first accepted connection and
    (optionally) starts its outage schedule then."""

    def __init__(self, *args: Any, outages_from_start: Outages | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_accept: float | None = None
        self.outages_from_start = outages_from_start

    def arm(self) -> None:
        self.first_accept = None

    def _accept(self, client_r: Any, client_w: Any) -> None:  # runs on the emulator's loop
        import asyncio

        if self.first_accept is None and self.is_up:
            self.reset_counters()
            self.first_accept = time.monotonic()
            if self.outages_from_start is not None:
                self._tasks.append(asyncio.get_running_loop().create_task(
                    self._schedule(self.outages_from_start)))
        super()._accept(client_r, client_w)


class Link(EmulatorThread):
    """An emulated link to ``127.0.0.1:target_port``; ``start_time`` is when the first
    connection was accepted (counters and timeline restart then). With ``outages``, the
    link drops on that schedule counted from the first connection."""

    def __init__(self, target_port: int, profile: LinkProfile | None = None,
                 outages: Outages | None = None) -> None:
        super().__init__(target_port, profile or LinkProfile.satellite())
        self.emulator = _TimedEmulator(target_port, profile or LinkProfile.satellite(),
                                       outages_from_start=outages)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def start_time(self) -> float | None:
        return self._call(lambda: self.emulator.first_accept)

    def arm(self) -> None:
        """Take the next accepted connection as a new start (counters restart then)."""
        self._call(self.emulator.arm)

    def wait_start(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while (t := self.start_time) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no connection through the link")
            time.sleep(0.01)
        return t

    def bytes(self) -> tuple[int, int]:
        stats = self.stats
        return int(stats["sent_up"]), int(stats["sent_down"])


# -- processes -----------------------------------------------------------------------------


class Processes:
    """Subprocesses and other things to stop, stopped in reverse order by :meth:`close`."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def popen(self, cmd: Sequence[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = open(log, "ab")
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)

        def stop() -> None:
            terminate(proc)
            out.close()

        self._stops.append(stop)
        return proc

    def on_close(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def close(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            with contextlib.suppress(Exception):
                stop()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def terminate(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (which we started in its own session), then
    SIGKILL it if it does not end."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of a finished leader
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group; kill the group on timeout or Ctrl-C."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        terminate(proc, 2)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# -- rsync ---------------------------------------------------------------------------------


class RsyncDaemon:
    """``rsync --daemon`` on 127.0.0.1 with one writable module ``data`` at ``path``."""

    def __init__(self, procs: Processes, path: Path, workdir: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = workdir / f"rsyncd-{self.port}.conf"
        conf.write_text(
            f"pid file = {workdir / f'rsyncd-{self.port}.pid'}\n"
            "use chroot = no\nnumeric ids = yes\nmax connections = 8\n"
            f"uid = {os.getuid()}\ngid = {os.getgid()}\n"
            f"[data]\n    path = {self.path}\n    read only = no\n    list = yes\n")
        self.proc = procs.popen(["rsync", "--daemon", "--no-detach", f"--config={conf}",
                                 f"--port={self.port}", "--address=127.0.0.1"],
                                workdir / f"rsyncd-{self.port}.log")
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rsync daemon did not start: {(workdir / f'rsyncd-{self.port}.log').read_text()}")
            time.sleep(0.05)

    @staticmethod
    def url(port: int) -> str:
        """The module URL through a link listening on ``port``."""
        return f"rsync://127.0.0.1:{port}/data/"


@dataclass
class RsyncRun:
    wall: float
    returncode: int
    stats: dict[str, int] = field(default_factory=dict)
    attempts: int = 1
    output: str = ""


_STAT_KEYS = {"Total bytes sent": "sent", "Total bytes received": "received",
              "Literal data": "literal", "Matched data": "matched",
              "Total transferred file size": "transferred"}


def parse_rsync_stats(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _STAT_KEYS:
            number = re.match(r"\s*([\d,.]+)", value)
            if number:
                out[_STAT_KEYS[key.strip()]] = int(re.sub(r"[,.]", "", number.group(1)))
    return out


def rsync(args: Sequence[str], timeout: float) -> RsyncRun:
    """One ``rsync`` client run (``--stats`` added)."""
    t0 = time.monotonic()
    done = run(["rsync", "--stats", *args], timeout)
    return RsyncRun(time.monotonic() - t0, done.returncode, parse_rsync_stats(done.stdout),
                    output=(done.stdout + done.stderr)[-3000:])


def rsync_until_done(args: Sequence[str], deadline: float, pause: float = 1.0) -> RsyncRun:
    """``until rsync ...; do sleep 1; done``, bounded by ``deadline`` (monotonic)."""
    t0 = time.monotonic()
    attempts = 0
    totals: dict[str, int] = {}
    while True:
        attempts += 1
        one = rsync(args, max(5.0, deadline - time.monotonic()))
        for k, v in one.stats.items():
            totals[k] = totals.get(k, 0) + v
        if one.returncode == 0 or time.monotonic() + pause > deadline:
            return RsyncRun(time.monotonic() - t0, one.returncode, totals, attempts, one.output)
        time.sleep(pause)


# -- Syncthing -----------------------------------------------------------------------------


FOLDER = "bench"


class Syncthing:
    """One Syncthing instance: its own ``--home``, REST on a loopback port."""

    def __init__(self, procs: Processes, home: Path, name: str) -> None:
        self.procs = procs
        self.home = Path(home)
        self.name = name
        self.home.mkdir(parents=True, exist_ok=True)
        done = run(["syncthing", "generate", f"--home={self.home}", "--no-default-folder",
                    "--skip-port-probing"], 60)
        found = re.search(r"Device ID:\s*([A-Z0-9-]{63})", done.stdout + done.stderr)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"syncthing generate failed: {done.stdout}{done.stderr}")
        self.device_id = found.group(1)
        self.gui_port = free_port()
        self.listen_port = free_port()
        self.api_key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.gui_port}/rest"

    def configure(self, folder: Path, peer: Syncthing, peer_address: str, *,
                  watcher_delay: int | None = None, options: dict[str, str] | None = None) -> None:
        """Write config.xml: the shared folder, the peer (at ``peer_address``, or
        ``dynamic`` = never dialled without discovery), loopback only, nothing global."""
        path = self.home / "config.xml"
        tree = ET.parse(path)
        root = tree.getroot()
        gui = root.find("gui")
        assert gui is not None
        gui.set("tls", "false")
        gui.find("address").text = f"127.0.0.1:{self.gui_port}"  # type: ignore[union-attr]
        gui.find("apikey").text = self.api_key  # type: ignore[union-attr]
        opts = root.find("options")
        assert opts is not None
        settings = {
            "listenAddress": f"tcp://127.0.0.1:{self.listen_port}",
            "globalAnnounceEnabled": "false", "localAnnounceEnabled": "false",
            "relaysEnabled": "false", "natEnabled": "false", "urAccepted": "-1",
            "autoUpgradeIntervalH": "0", "crashReportingEnabled": "false",
            "startBrowser": "false", "stunServer": "", "setLowPriority": "false",
            **(options or {}),
        }
        for key, value in settings.items():
            node = opts.find(key)
            if node is None:
                node = ET.SubElement(opts, key)
            node.text = value
        mhdf = opts.find("minHomeDiskFree")
        if mhdf is not None:
            mhdf.text = "0"
        defaults_folder = root.find("defaults/folder")
        assert defaults_folder is not None
        device = ET.SubElement(root, "device", {"id": peer.device_id, "name": peer.name,
                                                "compression": "metadata", "introducer": "false",
                                                "skipIntroductionRemovals": "false", "introducedBy": ""})
        ET.SubElement(device, "address").text = peer_address
        ET.SubElement(device, "paused").text = "false"
        ET.SubElement(device, "autoAcceptFolders").text = "false"
        folder_el = ET.fromstring(ET.tostring(defaults_folder))
        folder_el.set("id", FOLDER)
        folder_el.set("label", FOLDER)
        folder_el.set("path", str(folder))
        if watcher_delay is not None:
            folder_el.set("fsWatcherDelayS", str(watcher_delay))
        for d in folder_el.findall("device"):
            folder_el.remove(d)
        for dev in (self.device_id, peer.device_id):
            el = ET.Element("device", {"id": dev, "introducedBy": ""})
            ET.SubElement(el, "encryptionPassword").text = ""
            folder_el.insert(1, el)
        mdf = folder_el.find("minDiskFree")
        if mdf is not None:
            mdf.text = "0"
        root.insert(0, folder_el)
        tree.write(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".stfolder").mkdir(exist_ok=True)

    @property
    def watcher_delay(self) -> int:
        tree = ET.parse(self.home / "config.xml")
        folder = tree.getroot().find(f"folder[@id='{FOLDER}']")
        return int(folder.get("fsWatcherDelayS", "10")) if folder is not None else 10

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1", "STNORESTART": "1",
               "HOME": str(self.home)}
        self.proc = self.procs.popen(
            ["syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart",
             "--no-upgrade", "--logflags=3"], self.home / "syncthing.log", env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"syncthing {self.name} exited: "
                                   f"{(self.home / 'syncthing.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api}/system/ping", headers=self.headers, timeout=1).ok:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"syncthing {self.name} did not answer within {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def get(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.api}/{path}", params=params, headers=self.headers, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, **params: Any) -> None:
        requests.post(f"{self.api}/{path}", params=params, headers=self.headers, timeout=10).raise_for_status()

    def folder_status(self) -> dict[str, Any]:
        return self.get("db/status", folder=FOLDER)

    def rescan(self) -> None:
        self.post("db/scan", folder=FOLDER)

    def connected(self, peer: Syncthing) -> bool:
        conns = self.get("system/connections").get("connections", {})
        return bool(conns.get(peer.device_id, {}).get("connected"))

    def idle_with(self, files: int) -> bool:
        """Whether the folder is idle, holds ``files`` files and needs nothing.
        (Syncthing counts 128 bytes per directory in its byte totals, so compare files.)"""
        s = self.folder_status()
        return (s.get("state") == "idle" and s.get("localFiles") == files
                and s.get("globalFiles") == files and s.get("needTotalItems") == 0)


@dataclass
class SyncthingPair:
    hub: Syncthing
    ship: Syncthing
    link: Link
    hub_folder: Path
    ship_folder: Path

    def stop(self) -> None:
        self.ship.stop()
        self.hub.stop()
        self.link.stop()


def syncthing_pair(procs: Processes, root: Path, hub_folder: Path, ship_folder: Path, *,
                   outages: Outages | None = None, watcher_delay: int | None = None,
                   options: dict[str, str] | None = None, start_ship: bool = True) -> SyncthingPair:
    """A hub and a ship instance sharing ``FOLDER``; the ship dials the hub through a link
    (the hub cannot dial the ship: the ship's address is ``dynamic`` and discovery is off).
    The hub is started and has scanned its folder when this returns; the ship is started
    (dialling at once) if ``start_ship``."""
    hub = Syncthing(procs, root / "st-hub", "hub")
    ship = Syncthing(procs, root / "st-ship", "ship")
    link = Link(hub.listen_port, outages=outages)
    link.start()
    procs.on_close(link.stop)
    hub.configure(hub_folder, ship, "dynamic", watcher_delay=watcher_delay, options=options)
    ship.configure(ship_folder, hub, f"tcp://127.0.0.1:{link.port}", watcher_delay=watcher_delay,
                   options=options)
    hub.start()
    wait_for(lambda: hub.folder_status().get("state") == "idle", 120, "syncthing hub scanned")
    pair = SyncthingPair(hub, ship, link, hub_folder, ship_folder)
    if start_ship:
        ship.start()
    return pair


# -- small helpers ---------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something true (a peer still starting counts as
    not yet); TimeoutError after ``timeout`` s."""
    return wait_until(check, timeout, what, interval, (requests.RequestException, OSError, ValueError, KeyError))


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (Syncthing's own files left out)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not rel.startswith((".stfolder", ".stversions")) and ".syncthing." not in rel:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def tree_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder`` (Syncthing's own files left out)."""
    files = [p for p in folder.rglob("*") if p.is_file()
             and not p.relative_to(folder).as_posix().startswith((".stfolder", ".stversions"))
             and ".syncthing." not in p.name]
    return len(files), sum(p.stat().st_size for p in files)
