"""Running a site server from the command line (``eurec4a-nt serve``)."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_STORE
from ..errors import BadInput

if TYPE_CHECKING:  # the server's modules are imported when it starts, not for --help
    import asyncio

    from aiohttp import web

    from .context import ServerConfig

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``eurec4a-nt serve``; a ``--config`` file may hold the same keys
    (spelled as the options without ``--``, plus ``links:`` and ``watch:`` lists)."""
    p.add_argument("--config", help="YAML file with any of the settings below (keys spelled as the "
                   "options: read-token, cache-cap, ...) and links: and watch: lists")
    p.add_argument("--site", help="this server's site (must match the store)")
    p.add_argument("--store", help=f"site store folder (default {DEFAULT_STORE}), or the s3:// URL "
                   "given to 'eurec4a-nt init' (then --local names the folder with the key)")
    p.add_argument("--local", help="with an s3:// --store: the local folder holding its key, "
                   f"config and state (default {DEFAULT_STORE})")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 8047; 0: any free port, see --port-file)")
    p.add_argument("--port-file", help="write the port listened on to this file once serving")
    p.add_argument("--read-token", action="store_true", default=None,
                   help="require a token for reads too (default: reads are open on the LAN)")
    p.add_argument("--cache-cap", help="evict least recently used data of other sites beyond this "
                   "size (e.g. 50GB)")
    p.add_argument("--pin", action="append", default=[], help="topic never evicted (repeatable)")
    p.add_argument("--link", action="append", default=[], metavar="URL",
                   help="dial this site server (simple link; use --links for topics, budgets ...)")
    p.add_argument("--push", action="append", default=[], help="topic pushed over --link links")
    p.add_argument("--prefetch", action="append", default=[], help="topic pulled over --link links")
    p.add_argument("--upstream", metavar="URL", help="read through to this site server (a lazy-only link)")
    p.add_argument("--links", metavar="FILE", help="YAML file with a links: list")
    p.add_argument("--keyring", metavar="FILE", help="campaign keyring file (or EUREC4A_NT_KEYRING)")
    p.add_argument("--public-url", metavar="URL", help="URL clients use to reach this server (for catalogs)")
    p.add_argument("--tls-cert", metavar="PEM", help="listen with TLS (https://, wss://): certificate chain")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument("--read-ahead", metavar="SIZE", help="bytes of blocks one read fetches ahead from an "
                   "object store such as S3, held in memory (default 16MiB; 1MiB to 1GiB)")
    p.add_argument("--direct-reads", action="store_true", default=None,
                   help="offer readers signed URLs to fetch blocks of large reads straight from the "
                   "object store (S3), each checked by its id (default: off)")
    p.add_argument("--direct-reads-expiry", type=int, metavar="SECONDS",
                   help="seconds a URL of --direct-reads is good for (default 900)")
    p.add_argument("--head-timeout", type=int, metavar="SECONDS",
                   help="seconds a client may take to send a request head, or stay idle between "
                   "requests, before it is closed (default 60)")
    p.add_argument("--body-timeout", type=int, metavar="SECONDS",
                   help="seconds a request body read whole (JSON, a form, one object) may take "
                   "to arrive before it is answered 408 (default 120)")
    p.add_argument("--ca-file", metavar="PEM", help="verify the https:// servers this one dials against "
                   "these CA certificates (e.g. the campaign's own CA) instead of the system's")


#: Options that are settings of :class:`ServerSettings` (the rest build links).
_SETTINGS = ("site", "store", "local", "host", "port", "read_token", "cache_cap", "pin", "keyring", "public_url",
             "tls_cert", "tls_key", "ca_file", "read_ahead", "direct_reads", "direct_reads_expiry", "head_timeout",
             "body_timeout")


def config_from(args: argparse.Namespace) -> ServerConfig:
    """Command-line options over the ``--config`` file over defaults, parsed strictly.

    Raises :class:`BadInput` naming the key or option for an unknown key, a wrong value
    or a missing file (``--config``, ``--links``, ``--keyring``).
    """
    import msgspec

    from ..settings import LinkSettings, LinksFile, ServerSettings, existing, load, parse
    from ..sitestore import KEYRING_ENV, local_folder
    from .blocks import READ_AHEAD
    from .context import ServerConfig

    file = load(args.config, ServerSettings, "--config") if args.config else ServerSettings()
    given = {name.replace("_", "-"): getattr(args, name) for name in _SETTINGS
             if getattr(args, name, None) not in (None, [], "")}
    merged = {k: v for k, v in msgspec.to_builtins(file, enc_hook=int).items() if k not in ("links", "watch")}
    settings = parse({**merged, **given}, ServerSettings, "", option=True)
    links = [link.config() for link in file.links]
    if args.links:
        links += [link.config() for link in load(args.links, LinksFile, "--links").links]
    simple = [{"url": url, "push": args.push, "prefetch": args.prefetch} for url in args.link]
    simple += [{"url": args.upstream}] if args.upstream else []
    links += [parse(body, LinkSettings, "--link").config() for body in simple]
    keyring = settings.keyring or os.environ.get(KEYRING_ENV)
    if keyring:
        existing(keyring, "--keyring" if settings.keyring else KEYRING_ENV,
                 "give the campaign keyring file, e.g. catalogs/keyring.yaml")
    return ServerConfig(
        store=local_folder(settings.store or DEFAULT_STORE, settings.local, DEFAULT_STORE),
        site=settings.site, host=settings.host,
        port=settings.port, read_token=settings.read_token, cache_cap=settings.cache_cap,
        pinned_topics=list(settings.pin), links=links, keyring=Path(keyring) if keyring else None,
        public_url=settings.public_url, watch=list(file.watch),
        tls_cert=_file(settings.tls_cert, "--tls-cert"), tls_key=_file(settings.tls_key, "--tls-key"),
        ca_file=_file(settings.ca_file, "--ca-file"),
        read_ahead=settings.read_ahead or READ_AHEAD,
        direct_reads=settings.direct_reads_expiry if settings.direct_reads else None,
        head_timeout=settings.head_timeout, body_timeout=settings.body_timeout,
    )


def _file(path: str | None, option: str) -> Path | None:
    from ..settings import existing

    return existing(path, option) if path else None


class MalformedRequests(logging.Filter):
    """aiohttp answers a malformed request 400 and logs it as an ERROR with a traceback,
    also a malformed body it drains after an answer; anyone on the network can send
    one, so it becomes one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError
        from aiohttp.web_protocol import RequestPayloadError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (HttpProcessingError, RequestPayloadError)):
            reason = " ".join(str(exc).split())[:200]
            record.msg, record.args = f"malformed request: {record.getMessage()}: {reason}", None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def _more_files() -> None:
    """Raise this process's limit of open files to the hard limit: each connection holds
    one, and the usual soft limit of 1024 lets a few hundred idle clients lock out the rest."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _out_of_files(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Loop errors as usual, but running out of file descriptors (new connections then
    wait a second) is one warning line, not a traceback."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        log.warning("out of file descriptors: new connections wait (%s)", exc.strerror)
        return
    loop.default_exception_handler(context)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace) -> int:
    """Run the site server of ``args`` until SIGINT or SIGTERM."""
    import asyncio

    from .app import make_app

    config = config_from(args)
    if not (config.store / "config.yaml").exists():
        raise BadInput(f"no site store at {config.store}: run 'eurec4a-nt init SITE --store {config.store}' first")
    if not _is_loopback(config.host):
        print(f"listening on {config.host}: reachable from the network; writes need a token"
              + ("" if config.read_token else ", reads are open (use --read-token to close them)"),
              file=sys.stderr)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())
    _more_files()
    asyncio.run(_run(make_app(config), config, Path(args.port_file) if args.port_file else None))
    return 0


async def _run(app: web.Application, config: ServerConfig, port_file: Path | None) -> None:
    """Serve ``app`` until SIGINT or SIGTERM. The port is bound here, so ``--port 0`` takes
    a free port with no race; it is printed and written to ``port_file`` once serving."""
    import asyncio

    from aiohttp import web

    from ..tls import server_context
    from .context import NODE

    tls = server_context(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    asyncio.get_running_loop().set_exception_handler(_out_of_files)
    # bodies are taken as sent, a Content-Encoding never undone: no decompression bombs
    runner = web.AppRunner(app, access_log=None, auto_decompress=False, keepalive_timeout=config.head_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port, ssl_context=tls).start()
        port = int(runner.addresses[0][1])
        if port_file is not None:
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(f"{port}\n")
            tmp.replace(port_file)
        url = config.public_url or f"{'https' if tls else 'http'}://{config.host}:{port}"
        print(f"site server {app[NODE].site} on {url}/ (Ctrl-C stops it)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
