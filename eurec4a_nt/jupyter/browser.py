"""The catalog browser: a JupyterLab widget of every site's entries (``nt.browse()``).

An anywidget: the front end is a plain ES module and a style sheet shipped with the
package (``browser.js``, ``browser.css``), so JupyterLab 4 needs no build step. The
kernel side holds the state as synced traits: filtering by topic and text, prefetch
and preview run in Python, and the page only draws and sends clicks.

It refreshes from the kernel, not from the page: a daemon thread long-polls the site
server (``GET /logs?since=<version>&wait=<interval>``, answered as soon as a commit,
an object or a prefetch rule changes anything, else after ``interval`` seconds) and
re-reads the entries when the server's change counter moved. The kernel already has
the server's URL and token and can reach it; the page might not (a JupyterHub far
from the site server, no CORS headers on the site server, a read token that would
have to be handed to page scripts). The traits then reach every open view of the
widget through its comm.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..client import SiteClient
from ..entries import check_topics
from ..errors import NTError
from ..fs import NTFileSystem
from ..sitestore import SiteStore
from ..sizes import human_size
from .preview import Previews
from .rows import ServerView, Snapshot, Start, StoreView, matches, to_come

#: Rows in one page of the widget (``matched`` says how many match the filters; the
#: next and previous buttons move through the pages).
MAX_ROWS = 300
#: A prefetch click that would bring more than this many bytes here asks first.
CONFIRM_ABOVE = 100_000_000
#: After a refresh, changes are collected this long before the next one (a burst of
#: objects arriving is one refresh, not hundreds).
_SETTLE = 0.5


class CatalogBrowser(anywidget.AnyWidget):
    """Sites and their entries, filtered by ``topic`` and ``query``; open, prefetch and
    preview; follows the server until :meth:`stop` (or :meth:`close`)."""

    _esm = Path(__file__).with_name("browser.js")
    _css = Path(__file__).with_name("browser.css")

    source = traitlets.Unicode("").tag(sync=True)
    site = traitlets.Unicode("").tag(sync=True)
    setup = traitlets.Unicode("").tag(sync=True)
    sites: Any = traitlets.List().tag(sync=True)
    topics: Any = traitlets.List().tag(sync=True)
    topic = traitlets.Unicode("").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    rows: Any = traitlets.List().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    matched = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    more = traitlets.Bool(False).tag(sync=True)
    rules: Any = traitlets.List().tag(sync=True)
    links: Any = traitlets.List().tag(sync=True)
    preview = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    updated = traitlets.Unicode("").tag(sync=True)
    following = traitlets.Bool(False).tag(sync=True)
    #: A prefetch waiting for the user's yes: what, how much, and the rule it would add.
    confirm = traitlets.Dict().tag(sync=True)

    def __init__(self, target: SiteClient | SiteStore, interval: float = 3.0,
                 confirm_above: int = CONFIRM_ABOVE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Seconds between checks of the server when nothing changes.
        self.interval = interval
        #: A prefetch that would bring more bytes than this here is confirmed first.
        self.confirm_above = confirm_above
        #: Rows in one page.
        self.page_size = MAX_ROWS
        self._target = target
        self._lock = threading.RLock()
        self._snapshot = Snapshot(site="")
        #: Where each page visited starts (filters changed: back to the first).
        self._starts: list[Start] = [(0, "")]
        #: The first page without filters, as read last (filtered here when offline).
        self._unfiltered: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="eurec4a-nt browser", daemon=True)
        self._view: ServerView | StoreView
        if isinstance(target, SiteStore):
            self._view = StoreView(target)
            self._previews = Previews(NTFileSystem(store=str(target.path)))
            self.source, where = str(target.path), f"store={json.dumps(str(target.path))}"
        else:
            self._view = ServerView(target)
            self._previews = Previews(NTFileSystem(server=target.server, token=target.token,
                                                   cache=str(target.cache_dir)))
            self.source, where = target.server, f"server={json.dumps(target.server)}"
        self.setup = f"import eurec4a_nt as nt\ncat = nt.open_catalog({where})"
        self.on_msg(self._on_message)
        try:
            self._version: int | None = self._view.wait_change(None, 0)
            self.refresh()
        except BaseException:
            self.close()
            raise
        self.following = True
        self._thread.start()

    # -- state ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the page shown from the server (or store) now and show it."""
        with self._lock:
            page = min(self.page, len(self._starts) - 1)
            snapshot = self._view.snapshot(self.topic, self.query, self._starts[page], self.page_size)
            if not (self.topic or self.query or page):
                self._unfiltered = snapshot.rows
            with self.hold_sync():
                self._snapshot = snapshot
                self.site, self.sites, self.topics = snapshot.site, snapshot.sites, snapshot.topics
                self.rules, self.links = snapshot.rules, snapshot.links
                self.rows, self.matched, self.total = snapshot.rows, snapshot.matched, snapshot.total
                self.more = snapshot.end is not None
                self.updated, self.error = time.strftime("%H:%M:%S"), ""

    @traitlets.observe("topic", "query")
    def _filters_changed(self, _change: Any) -> None:
        with self._lock:
            self._starts = [(0, "")]
            if self.page:
                self.page = 0  # refreshes
            else:
                self._show()

    def _show(self) -> None:
        """Refresh; when the server cannot be reached, filter the rows read last."""
        try:
            self.refresh()
        except NTError as exc:
            found = [r for r in self._unfiltered if matches(r, self.topic, self.query)]
            self._set(rows=found, matched=len(found), more=False,
                      error=f"{exc} (filtering the {len(self._unfiltered)} entries read last)")

    @traitlets.observe("page")
    def _page_changed(self, change: Any) -> None:
        """Show another page: the next one (after the last seen), or any seen before."""
        with self._lock:
            wanted = max(int(change["new"]), 0)
            if wanted >= len(self._starts) and self._snapshot.end is not None:
                self._starts.append(self._snapshot.end)
            if wanted >= len(self._starts):
                self.page = len(self._starts) - 1
                return
            self._show()

    def _set(self, **traits: Any) -> None:
        with self._lock, self.hold_sync():
            for name, value in traits.items():
                setattr(self, name, value)

    def _follow(self) -> None:
        """The refresh thread: wait for a change, refresh, repeat until stopped."""
        version = self._version
        while not self._stop.is_set():
            try:
                if version is None:  # after an error: start over
                    version = self._view.wait_change(None, 0)
                    self.refresh()
                seen = self._view.wait_change(version, self.interval)
                if seen != version and not self._stop.is_set():
                    version = seen
                    self.refresh()
                    self._stop.wait(_SETTLE)
            except Exception as exc:  # noqa: BLE001 - shown in the widget; the thread retries
                version = None
                self._set(error=f"{exc} (retrying every {self.interval:g} s)")
                self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop following the server; the views keep showing the last state."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.interval + 30)
        self._set(following=False)

    def close(self) -> None:
        """Stop following the server and remove the widget's views."""
        self.stop()
        super().close()

    # -- actions ----------------------------------------------------------------------

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        action = content.get("action")
        try:
            if action == "prefetch":
                self.prefetch(topics=content.get("topics") or (), sites=content.get("sites") or (),
                              names=content.get("names") or (), confirmed=bool(content.get("confirmed")))
            elif action == "unprefetch":
                self.unprefetch(int(content["id"]))
            elif action == "cancel":
                self._set(confirm={}, message="prefetch cancelled")
            elif action == "preview":
                self.show_preview(str(content["site"]), str(content["name"]))
            elif action == "versions":
                self.show_versions(str(content["site"]), str(content["name"]))
            elif action == "refresh":
                self.refresh()
        except (NTError, OSError) as exc:  # a click shows what went wrong, never raises
            self._set(message=f"{action} failed: {exc}")

    def prefetch(self, topics: Sequence[str] = (), sites: Sequence[str] = (),
                 names: Sequence[str] = (), confirmed: bool = False) -> dict[str, Any]:
        """Ask the server to hold every entry of ``topics``/``sites``/``names`` (``SITE/NAME``
        globs), now and as new ones appear; return the rule's status. Progress shows in
        the widget (per entry, and per rule) as objects arrive.

        Unless ``confirmed``, a rule that would bring more than ``confirm_above`` bytes
        here is not added: the widget shows how much and asks (the returned dict then
        holds ``confirm``)."""
        topics = check_topics(list(topics))
        what = ", ".join([*topics, *sites, *names])
        count, size = to_come(self._snapshot.rows, topics, sites, names)
        if size > self.confirm_above and not confirmed:
            ask = {"what": what, "entries": count, "size": size, "size_text": human_size(size),
                   "topics": list(topics), "sites": list(sites), "names": list(names)}
            self._set(confirm=ask, message="")
            return {"confirm": ask}
        status = self._target.prefetch(topics, list(sites), list(names), wait=False)
        self._set(confirm={}, message=f"prefetching {what}: {status['objects_held']} of "
                                      f"{status['objects_needed']} objects here")
        self.refresh()
        return status

    def unprefetch(self, rule_id: int) -> None:
        """Remove prefetch rule ``rule_id`` (nothing more is fetched for it)."""
        self._target.unprefetch(rule_id)
        self._set(message=f"removed prefetch rule {rule_id}")
        self.refresh()

    def show_preview(self, site: str, name: str) -> dict[str, Any]:
        """Show an image entry, or a markdown entry (a file, or a folder's ``index.md``
        or ``README.md`` with its images), below the table; return what is shown."""
        self._set(preview={"site": site, "name": name, "kind": "loading"})
        try:
            shown = self._previews.of(site, name)
        except (NTError, OSError) as exc:
            shown = {"kind": "error", "message": str(exc)}
        self._set(preview={"site": site, "name": name, **shown})
        return self.preview

    def show_versions(self, site: str, name: str) -> dict[str, Any]:
        """Show every version of an entry below the table, newest first, each with the
        code that opens it; return what is shown."""
        try:
            found = self._target.versions(site, name)
        except (NTError, OSError) as exc:
            self._set(preview={"site": site, "name": name, "kind": "error", "message": str(exc)})
            return self.preview
        rows = [{"seq": v.seq, "time": v.time, "op": v.op, "replaces": v.replaces,
                 "replaced_by": v.replaced_by, "format": v.entry.format if v.entry else "",
                 "size_text": human_size(v.entry.size) if v.entry else "",
                 "code": f"cat[{site!r}][{name!r}].at({v.seq})" if v.entry else ""}
                for v in reversed(found)]
        self._set(preview={"site": site, "name": name, "kind": "versions", "versions": rows})
        return self.preview
