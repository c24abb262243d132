"""A site joining late: the log of another site started from its newest checkpoint.

Instead of replaying every commit a site ever made, the joining store reads the
newest checkpoint a site server holds of that log (``GET /logs/<site>/checkpoint``,
its objects verified by their ids), checks the site's signature on it against the
campaign keyring, starts its copy of the log there, and fetches only the commits made
after it. Links then keep it up to date as for any other log.
"""

from __future__ import annotations

from typing import Any

from .checkpoint import start_at
from .client import SiteClient
from .errors import BadCommit
from .logstate import CheckpointRef
from .sitestore import SiteStore
from .stores.http import HTTPStore

#: Commits asked for per request when catching up.
PAGE = 5000


def join(store: SiteStore, server: str, site: str, token: str | None = None) -> dict[str, Any]:
    """Bring the log of ``site`` in ``store`` up to what ``server`` holds, starting
    from its newest checkpoint there if this store holds less than that.

    Returns ``{"checkpoint": seq or None, "commits": fetched, "seq": now held}``.
    Raises :class:`BadCommit` if the checkpoint or a commit does not verify (nothing of
    it is kept) and the errors of :class:`SiteClient` when the server cannot answer.
    """
    client = SiteClient(server, token=token)
    started = None
    body = client.checkpoint(site)
    if body is not None and store.log(site).seq < int(body["seq"]):
        ref = CheckpointRef.from_json(body)
        if start_at(store, ref, HTTPStore(client.server, client.http, site=site)):
            started = ref.seq
    fetched = 0
    while True:
        raws = client.commits_after(site, store.log(site).seq, PAGE)
        if not raws:
            break
        added, rejected = store.receive(raws)
        fetched += len(added)
        if rejected and not added:
            raise BadCommit(f"catching up with {site} from {server}: {rejected[0]}")
        if len(raws) < PAGE:
            break
    return {"checkpoint": started, "commits": fetched, "seq": store.log(site).seq}
