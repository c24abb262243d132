"""nginx for tests and benchmarks: in the foreground on a free loopback port, as a TLS
reverse proxy in front of a site server (configured as docs/security.md says) or
serving files."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..demokit.sites import free_port, stop_process


def nginx_command() -> str | None:
    """The nginx executable, or None where it is not installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Return once something listens on ``127.0.0.1:port``; RuntimeError if ``proc``
    exits first or nothing listens within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def nginx(root: Path, servers: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with the ``http`` block contents ``servers`` (listening on ``port``), its
    files under ``root``; yields the master process once it listens, stops it on exit.
    Raises RuntimeError if nginx is missing or does not start."""
    command = nginx_command()
    if command is None:
        raise RuntimeError("nginx is not installed")
    root.mkdir(parents=True, exist_ok=True)
    temp = "\n".join(f"  {k}_temp_path {root}/{k}-temp;" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = root / "nginx.conf"
    # "user" matters only when started as root (workers would run as nobody and not read
    # a private folder); otherwise nginx ignores it
    conf.write_text(f"""user {pwd.getpwuid(os.getuid()).pw_name};
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
{temp}
{servers}}}
""")
    with open(root / "nginx.out", "ab") as log:
        proc = subprocess.Popen([command, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log"),
                                 "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield proc
    finally:
        stop_process(proc)


def tls_site(listen: int, upstream: str, cert: Path, key: Path) -> str:
    """The ``server`` block of docs/security.md: TLS on ``listen``, everything (the
    links' WebSocket included) passed to ``upstream`` unbuffered."""
    return f"""  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{listen} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    location / {{
      proxy_pass {upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
"""


@contextmanager
def tls_proxy(root: Path, upstream: str, cert: Path, key: Path) -> Iterator[str]:
    """nginx terminating TLS on ``https://127.0.0.1:<free port>`` in front of ``upstream``;
    yields that URL."""
    port = free_port()
    with nginx(root, tls_site(port, upstream, cert, key), port):
        yield f"https://127.0.0.1:{port}"
