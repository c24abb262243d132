"""What every request handler shares: the server's configuration, its typed app keys
and small request helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ..node import Node
from ..sync.config import LinkConfig
from ..watch.rules import WatchRule
from .auth import Tokens

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


NODE = web.AppKey("node", Node)
CONFIG = web.AppKey("config", ServerConfig)
TOKENS = web.AppKey("tokens", Tokens)


def node(request: web.Request) -> Node:
    return request.app[NODE]


def base_url(request: web.Request) -> str:
    """The URL clients reach this server at, for links in catalogs and pages."""
    configured = request.app[CONFIG].public_url
    return (configured or str(request.url.origin())).rstrip("/")


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("token")


def require_write(request: web.Request) -> None:
    request.app[TOKENS].require(bearer(request), "write")


