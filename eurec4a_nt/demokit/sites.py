"""Real site servers in subprocesses on loopback ports, for tests, benchmarks and the demo.

:func:`make_sites` creates the stores of several sites that trust each other (one
campaign keyring); :class:`SiteProcess` runs ``eurec4a-nt serve`` for one of them and
waits until it answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import requests

from ..keyring import Keyring
from ..server.auth import Tokens
from ..sitestore import SiteStore


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Send ``sig`` to ``proc`` unless it has exited, and wait for it; SIGKILL if it is
    still running after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def make_sites(root: Path, sites: Iterable[str]) -> Path:
    """Create a store per site under ``root`` and a keyring all of them trust; return
    the keyring's path."""
    keyring = Keyring()
    for site in sites:
        keyring.merge(SiteStore.init(root / site, site).keyring)
    path = root / "keyring.yaml"
    keyring.save(path)
    for site in keyring.sites:
        SiteStore(root / site).trust(keyring)
    return path


class SiteProcess:
    """``eurec4a-nt serve`` for one site, in a subprocess on a loopback port. Without a
    ``port``, the server binds a free one itself and says which (no race with other
    processes); :attr:`port` is known once :meth:`start` returns."""

    def __init__(self, store: Path, *, port: int | None = None, args: Sequence[str] = (),
                 env: dict[str, str] | None = None, log: Path | None = None,
                 ca: Path | None = None) -> None:
        self.store = Path(store)
        #: With ``--tls-cert`` in ``args``: the CA file its certificate is checked against.
        self.ca = ca
        self.port = port or 0
        self._port_file = self.store.parent / f"{self.store.name}.port"
        self.args = list(args)
        self.env = env
        self.log_path = log or self.store.parent / f"{self.store.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = Tokens(self.store / "tokens.yaml").create("tests")

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-cert" in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def site(self) -> str:
        return SiteStore(self.store).site or ""

    def start(self, timeout: float = 30.0) -> SiteProcess:
        self._port_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "eurec4a_nt", "serve", "--store", str(self.store),
               "--port", str(self.port), "--port-file", str(self._port_file), *self.args]
        env = {**os.environ, "EUREC4A_NT_LOG": os.environ.get("EUREC4A_NT_LOG", "info"), **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"site server exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            if not self.port:
                if not self._port_file.exists():
                    time.sleep(0.05)
                    continue
                self.port = int(self._port_file.read_text())
            try:
                if requests.get(self.url + "/health", timeout=1, verify=str(self.ca) if self.ca else True).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"site server on {self.url} did not answer within {timeout} s")

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``) and wait for it."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL if kill else signal.SIGTERM)

    def status(self) -> dict:
        return requests.get(self.url + "/api/status", timeout=10, verify=str(self.ca) if self.ca else True).json()

    def __enter__(self) -> SiteProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
