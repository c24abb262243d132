"""What every request handler shares: the server's configuration, its typed app keys
and small request helpers."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ..errors import BadInput, TooSlow
from ..node import Node, Reader
from ..settings import BODY_TIMEOUT, HEAD_TIMEOUT
from ..sync.config import LinkConfig
from ..versions import At, parse_at
from ..watch.rules import WatchRule
from .auth import Tokens
from .blocks import READ_AHEAD

MAX_JSON_BODY = 16 << 20


@dataclass
class ServerConfig:
    """How a site server runs (from the command line or a YAML config file)."""

    store: Path
    site: str | None = None
    host: str = "127.0.0.1"
    port: int = 8047
    read_token: bool = False
    cache_cap: int | None = None
    pinned_topics: list[str] = field(default_factory=list)
    links: list[LinkConfig] = field(default_factory=list)
    keyring: Path | None = None
    public_url: str | None = None
    watch: list[WatchRule] = field(default_factory=list)
    #: Certificate chain and key to listen with TLS (https://, wss://); None: plain HTTP.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: CA certificates the servers this one dials are verified against (None: the system's).
    ca_file: Path | None = None
    #: Bytes of blocks one read fetches ahead from an object store (see :mod:`.blocks`).
    read_ahead: int = READ_AHEAD
    #: Seconds the URLs of direct reads are good for (``POST /objects/urls``); None: not offered.
    direct_reads: int | None = None
    #: Seconds a client may take to send a request head, or stay idle between requests.
    head_timeout: int = HEAD_TIMEOUT
    #: Seconds a body read whole may take to arrive (else 408).
    body_timeout: int = BODY_TIMEOUT


NODE = web.AppKey("node", Node)
CONFIG = web.AppKey("config", ServerConfig)
TOKENS = web.AppKey("tokens", Tokens)


def node(request: web.Request) -> Node:
    return request.app[NODE]


async def read_body(request: web.Request) -> bytes:
    """The whole body of ``request`` (413 past :data:`MAX_JSON_BODY`); :class:`TooSlow`
    (408) if it has not all arrived within the server's ``body-timeout``."""
    seconds = request.app[CONFIG].body_timeout
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise TooSlow(f"the request body did not arrive within {seconds} s") from None


#: A Host header: a DNS name or IPv4 address, or an IPv6 address in brackets; a port.
_HOST = re.compile(r"(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?")


def base_url(request: web.Request) -> str:
    """The URL clients reach this server at, for links in catalogs and pages: the
    configured public URL, else the scheme and ``Host`` of the request (400 for a
    malformed ``Host``)."""
    configured = request.app[CONFIG].public_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("Host", "")
    match = _HOST.fullmatch(host)
    if not match or int(match.group(1) or 0) > 65535:
        raise BadInput(f"malformed Host header {host[:80]!r}")
    return f"{request.scheme}://{host}"


#: The cookie a browser keeps a read token in (set by ``POST /login``).
TOKEN_COOKIE = "nt_token"


def bearer(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (never one in the URL)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def read_credential(request: web.Request) -> str | None:
    """The token a read presents: the ``Authorization`` header, else a browser's cookie.

    A cookie is good for reads only, so a page elsewhere that makes the browser post
    here cannot write.
    """
    return bearer(request) or request.cookies.get(TOKEN_COOKIE)


def reader(request: web.Request) -> Reader:
    """Who reads: a token holder (trusted: may make the server want any id) or an
    address (wants only for ids a known entry names)."""
    token = read_credential(request)
    if token and request.app[TOKENS].scope(token):
        return Reader(f"token:{hashlib.sha256(token.encode()).hexdigest()[:12]}", trusted=True)
    return Reader(f"address:{request.remote or '?'}")


def require_write(request: web.Request) -> None:
    request.app[TOKENS].require(bearer(request), "write")




def query_at(request: web.Request) -> At | None:
    """The point in the logs a request asks for (a seq or an ISO 8601 time), from its
    ``/at/<point>/...`` path or its ``?at=`` query, if any; 400 if malformed."""
    text = request.match_info.get("at") or request.query.get("at")
    return None if text is None else parse_at(text)
