"""Running a site server from the command line (``eurec4a-nt serve``)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ..config import DEFAULT_STORE
from ..errors import BadInput
from ..sync.config import LinkConfig, load_links, parse_size
from ..watch.rules import parse_rules
from .app import make_app
from .context import ServerConfig

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with any of the settings below (and links: and watch: lists)")
    p.add_argument("--site", help="this server's site (must match the store)")
    p.add_argument("--store", help=f"site store folder (default {DEFAULT_STORE})")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 8047; 0: any free port, see --port-file)")
    p.add_argument("--port-file", help="write the port listened on to this file once serving")
    p.add_argument("--read-token", action="store_true", default=None,
                   help="require a token for reads too (default: reads are open on the LAN)")
    p.add_argument("--cache-cap", help="evict least recently used data of other sites beyond this size")
    p.add_argument("--pin", action="append", default=[], help="topic never evicted (repeatable)")
    p.add_argument("--link", action="append", default=[], metavar="URL",
                   help="dial this site server (simple link; use --links for topics, budgets ...)")
    p.add_argument("--push", action="append", default=[], help="topic pushed over --link links")
    p.add_argument("--prefetch", action="append", default=[], help="topic pulled over --link links")
    p.add_argument("--upstream", help="read through to this site server (a lazy-only link)")
    p.add_argument("--links", help="YAML file with a links: list")
    p.add_argument("--keyring", help="campaign keyring file (or EUREC4A_NT_KEYRING)")
    p.add_argument("--public-url", help="URL clients use to reach this server (for catalogs)")


def config_from(args: argparse.Namespace) -> ServerConfig:
    """Command-line arguments over the config file over defaults."""
    file: dict[str, Any] = {}
    if args.config:
        file = yaml.safe_load(Path(args.config).read_text()) or {}

    def pick(name: str, default: Any = None) -> Any:
        value = getattr(args, name, None)
        return value if value not in (None, [], "") else file.get(name, default)

    links = [LinkConfig.from_dict(item) for item in file.get("links") or []]
    if args.links:
        links += load_links(Path(args.links))
    links += [LinkConfig.from_dict({"url": url, "push": args.push, "prefetch": args.prefetch})
              for url in args.link]
    if args.upstream:
        links.append(LinkConfig.from_dict({"url": args.upstream}))
    cap = pick("cache_cap")
    return ServerConfig(
        store=Path(pick("store", DEFAULT_STORE)), site=pick("site"), host=pick("host", "127.0.0.1"),
        port=int(pick("port", 8047)), read_token=bool(pick("read_token", False)),
        cache_cap=parse_size(cap) if cap else None, pinned_topics=list(pick("pin", [])),
        links=links, keyring=Path(pick("keyring")) if pick("keyring") else None,
        public_url=pick("public_url"), watch=parse_rules(file.get("watch"), f"{args.config}: watch"),
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace) -> int:
    config = config_from(args)
    if not (config.store / "config.yaml").exists():
        raise BadInput(f"no site store at {config.store}: run 'eurec4a-nt init SITE --store {config.store}' first")
    if not _is_loopback(config.host):
        print(f"listening on {config.host}: reachable from the network; writes need a token"
              + ("" if config.read_token else ", reads are open (use --read-token to close them)"),
              file=sys.stderr)
    site = config.site or (yaml.safe_load((config.store / "config.yaml").read_text()) or {}).get("site", "")
    asyncio.run(_run(make_app(config), config, site, Path(args.port_file) if args.port_file else None))
    return 0


async def _run(app: web.Application, config: ServerConfig, site: str, port_file: Path | None) -> None:
    """Serve ``app`` until SIGINT or SIGTERM. The port is bound here, so ``--port 0`` takes
    a free port with no race; it is printed and written to ``port_file`` once serving."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        port = int(runner.addresses[0][1])
        if port_file is not None:
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(f"{port}\n")
            tmp.replace(port_file)
        url = config.public_url or f"http://{config.host}:{port}"
        print(f"site server {site} on {url}/ (Ctrl-C stops it)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
