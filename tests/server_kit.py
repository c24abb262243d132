"""Helpers for the site-server tests: real servers in subprocesses, driven over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import requests
import xarray as xr
from aiohttp import web

import eurec4a_nt
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.server.app import make_app
from eurec4a_nt.server.context import ServerConfig
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores.fsspec import FsspecStore
from eurec4a_nt.testing.s3 import s3_options

TIMEOUT = 30


def start(root: Path, site: str, sites: Sequence[str] | None = None, args: Sequence[str] = (),
          env: dict[str, str] | None = None, ca: Path | None = None) -> SiteProcess:
    """Create the stores of ``sites`` (default: just ``site``) under ``root`` unless they
    exist, and start the server of ``site``, blanking the EUREC4A_NT_* settings of the
    test process (an empty setting counts as unset)."""
    if not (root / site / "config.yaml").exists():
        make_sites(root, list(sites or [site]))
    blank = {k: "" for k in os.environ if k.startswith("EUREC4A_NT_")}
    return SiteProcess(root / site, args=args, env={**blank, "EUREC4A_NT_LOG": "info", **(env or {})},
                       ca=ca).start()


def start_with_sonde(root: Path, size: int) -> SiteProcess:
    """RV-Meteor in a campaign with BCO (stores under ``root / "sites"``), holding one entry
    of its own: ``sondes/sonde.nc`` of ``size`` random bytes, topic ``sondes``."""
    proc = start(root / "sites", "RV-Meteor", sites=["RV-Meteor", "BCO"])
    path = root / "sonde.nc"
    path.write_bytes(os.urandom(size))
    try:
        eurec4a_nt.publish(path, name="sondes/sonde.nc", topics=["sondes"], server=proc.url, token=proc.token,
                           progress=False)
    except BaseException:
        proc.stop()
        raise
    return proc


def ship_to(source: SiteStore, target: SiteStore) -> None:
    """Give ``target`` the log and objects of ``source``'s site, as sync would."""
    target.trust(source.keyring)
    added, rejected = target.receive(c.raw for c in source.log(source.site or ""))
    assert rejected == [] and added
    target.objects.put_many((oid, source.objects.get(oid)) for oid in source.objects.ids())


def status(url: str) -> dict[str, Any]:
    return requests.get(url + "/api/status", timeout=TIMEOUT).json()


def listed(url: str, site: str) -> list[dict[str, Any]]:
    """The entries ``url`` lists for ``site``; none while it does not know the site yet (404)."""
    return requests.get(f"{url}/api/sites/{site}/entries", timeout=TIMEOUT).json().get("entries", [])


def auth(proc: SiteProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {proc.token}"}


def object_files(store: Path) -> int:
    """Object files in a store folder (what the index must count)."""
    return sum(1 for p in (store / "objects").glob("*/*") if p.is_file())


def assert_error(response: requests.Response, status_code: int, code: str | None = None) -> dict[str, Any]:
    """The response is a JSON error ``{"error", "message"}`` with this status."""
    assert response.status_code == status_code, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= {"error", "message"}, body
    assert body["message"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something true (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_consistent(proc: SiteProcess) -> None:
    """Up, no damaged object or bad commit, index matching the store, no 500 ever."""
    assert requests.get(proc.url + "/health", timeout=TIMEOUT).json()["ok"] is True
    done = subprocess.run([sys.executable, "-m", "eurec4a_nt", "fsck", "--store", str(proc.store)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status(proc.url)["objects"]["count"] == object_files(proc.store)
    assert "unexpected error" not in proc.log_path.read_text()


def state(proc: SiteProcess) -> tuple[int, dict[str, int], int]:
    """Objects indexed, log heads, object files: what a refused request must not change."""
    st = status(proc.url)
    return st["objects"]["count"], {s: v["seq"] for s, v in st["sites"].items()}, object_files(proc.store)


def raw(proc: SiteProcess, request: bytes, shut: bool = False) -> bytes:
    """Send raw bytes (no client-side URL normalisation); the answer, or b"" if none."""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
        s.sendall(request)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


class InProcessHub:
    """A site server on a loopback port, run by a thread of this process."""

    def __init__(self, store: Path) -> None:
        self.app = make_app(ServerConfig(store=store, port=0))
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def start(self) -> InProcessHub:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def damage(store: SiteStore, endpoint: str, oid: ObjectId) -> None:
    """Flip the first byte of the object in the store's bucket (on the S3 server at
    ``endpoint``), behind the store's back."""
    import s3fs

    assert isinstance(store.objects, FsspecStore)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))
    path = store.objects._path(oid)
    good = fs.cat_file(path)
    fs.pipe_file(path, bytes([good[0] ^ 0xFF]) + good[1:])


def publish_spectra(site: SiteProcess, path: Path, name: str, seed: int, topics: Sequence[str] = ()) -> FileRecord:
    """Write a netCDF4 file of 2000 x 500 random values to ``path``, publish it at ``site``
    as ``name`` and return its file record (blocks with tree roots: read in parts)."""
    values = np.random.default_rng(seed).random((2000, 500))
    xr.Dataset({"spectra": (("time", "bin"), values)}).to_netcdf(path, engine="h5netcdf")
    entry = eurec4a_nt.publish(path, name=name, topics=list(topics), server=site.url, token=site.token,
                               progress=False)
    return FileRecord.from_bytes(SiteStore(site.store).objects.get(entry.root))
