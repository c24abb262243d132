"""Which backend a call talks to: the local site store or a site server (with its
mirrors), as the settings of :mod:`eurec4a_nt.config` say.

The HTTP client is imported only when a server is asked, so a call on the local store
(a publish from a script, say) does not pay for loading it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .config import settings
from .sitestore import SiteStore
from .types import Backend


def open_backend(store: str | os.PathLike[str] | None = None, server: str | None = None,
                 token: str | None = None, cache: str | os.PathLike[str] | None = None,
                 mirrors: Sequence[str] = ()) -> Backend:
    """The local site store or the site-server client the settings point to; with
    ``mirrors``, the server and then each mirror in turn (see :mod:`eurec4a_nt.mirrors`)."""
    s = settings(store, server, token, cache)
    if not s.server:
        return SiteStore(s.store)  # type: ignore[arg-type]
    if mirrors:
        from .mirrors import Mirrors

        return Mirrors([s.server, *mirrors], token=s.token, cache=s.cache, cache_cap=s.cache_cap)
    from .client import SiteClient

    return SiteClient(s.server, token=s.token, cache=s.cache, cache_cap=s.cache_cap)
