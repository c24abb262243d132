"""What the command families share: the options naming a store or server, and opening them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_STORE

if TYPE_CHECKING:
    from ..sitestore import SiteStore


def add_target(p: argparse.ArgumentParser) -> None:
    """``--store``, ``--server`` and ``--token``: a local store or a site server."""
    p.add_argument("--store", help=f"local site store (or EUREC4A_NT_STORE; default {DEFAULT_STORE} if it exists)")
    p.add_argument("--server", help="site server URL (or EUREC4A_NT_SERVER)")
    p.add_argument("--token", help="access token (or EUREC4A_NT_TOKEN)")


def add_store(p: argparse.ArgumentParser, what: str = "local site store") -> None:
    """``--store`` of a command that works on a local store only."""
    p.add_argument("--store", help=f"{what} (default {DEFAULT_STORE})")


def open_target(args: argparse.Namespace) -> Any:
    """The store or server that :func:`add_target`'s options (or the settings) name."""
    from ..backends import open_backend

    return open_backend(store=args.store, server=args.server, token=args.token)


def site_store(args: argparse.Namespace) -> SiteStore:
    """The local store of ``--store`` (default :data:`DEFAULT_STORE`)."""
    from ..sitestore import SiteStore

    return SiteStore(args.store or DEFAULT_STORE)
