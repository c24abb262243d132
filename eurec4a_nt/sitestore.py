"""A site's store: its objects, the logs of every site it knows, its key and keyring.

Layout of the folder (``site-cache/`` by default)::

    config.yaml        which site this is; where objects (and logs) live if not here
    objects/ tmp/      content-addressed objects (or on any fsspec URL, see config)
    logs/<site>.jsonl  signed site logs, one per known site (or on S3, see config)
    keys/<site>.key    this site's private key (mode 0600)
    keyring.yaml       public keys this store trusts
    state/             the state of the logs and the server's index (rebuildable)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import yaml

from .catalog import dump, site_catalog, top_catalog, write_atomic
from .config import DEFAULT_STORE
from .entries import Entry, check_name, check_site
from .errors import BadCommit, BadInput, Corrupt, NotFound, ObjectMissing
from .folders import Folder
from .keyring import Keyring, KeyringSite, SiteKey
from .listing import Listings, SiteIndex
from .log import Change, Commit, SiteLog, SiteState, parse_commit
from .logfiles import FolderLogs, LogFiles, ObjectLogs
from .logstate import CheckpointRef, Fork, LogState
from .manifests import children
from .series import Product
from .settings import ProductRule, StoreFile, load
from .stores.base import ObjectStore
from .stores.local import LocalStore
from .summaries import SiteFolders
from .versions import At, Version, history, index_at, position, time_at

KEYRING_ENV = "EUREC4A_NT_KEYRING"


def is_url(store: str | os.PathLike[str]) -> bool:
    """Whether a ``--store`` is a URL (objects and logs on object storage), not a folder."""
    return "://" in os.fspath(store)


def local_folder(store: str, local: str | os.PathLike[str] | None, default: str) -> Path:
    """The local folder of a store given as ``store`` (a folder, or an object-storage URL
    whose key, config and state are in ``local``, else ``default``).

    Raises :class:`BadInput` if the local folder belongs to another URL.
    """
    if not is_url(store):
        return Path(store)
    folder = Path(local or default)
    config = load(folder / "config.yaml", StoreFile, "store config", missing_ok=True)
    if config.logs != store:
        raise BadInput(f"the local folder {folder} is not that of {store} (its site log is "
                       f"{config.logs or 'in the folder'}): name the folder 'eurec4a-nt init SITE "
                       f"--store {store}' made (--store FOLDER, or --local FOLDER beside the URL "
                       "for init and serve), or run that first")
    return folder


def _fsspec_store(config: StoreFile) -> ObjectStore:
    """The objects of a store kept on a URL (fsspec is imported only for such a store)."""
    from .stores.fsspec import FsspecStore

    return FsspecStore(config.objects or "", **config.storage_options)


class SiteStore:
    """Everything one site stores. ``site`` is None for a store that only caches."""

    def __init__(self, path: str | os.PathLike[str], keyring: str | os.PathLike[str] | None = None) -> None:
        """The store in the folder ``path``; a store on object storage is named by its
        URL with its local folder in :data:`~eurec4a_nt.config.DEFAULT_STORE`, or by that
        folder."""
        self.path = local_folder(os.fspath(path), None, DEFAULT_STORE)
        if not self.path.is_dir():
            raise NotFound(f"no store at {self.path}: create one with "
                           f"'eurec4a-nt init SITE --store {self.path}'")
        config = load(self.path / "config.yaml", StoreFile, "store config", missing_ok=True)
        self.site: str | None = config.site
        #: The product maps of this store's site and of others (see :mod:`eurec4a_nt.products`).
        self.products = {**config.products_of, **({config.site: config.products} if config.site else {})}
        self.objects: ObjectStore = _fsspec_store(config) if config.objects else LocalStore(self.path)
        self.logs: LogFiles = (ObjectLogs(config.logs, **config.storage_options) if config.logs
                               else FolderLogs(self.path / "logs"))
        self.db = LogState(self.path / "state" / "logs.sqlite")
        self.keyring = Keyring.load(self.path / "keyring.yaml")
        campaign = keyring or os.environ.get(KEYRING_ENV)
        if campaign:
            self.keyring.merge(Keyring.load(Path(campaign), missing_ok=False))
        self._logs: dict[str, SiteLog] = {}
        self._lock = threading.Lock()
        #: Every site's entries by name, for catalogs and searches.
        self.listings = Listings(self)
        self._past: dict[tuple[str, int], SiteIndex] = {}

    def __repr__(self) -> str:
        return f"SiteStore({str(self.path)!r}, site={self.site!r})"

    # -- creation ----------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str], site: str, objects: str | None = None,
             urls: Iterable[str] = (), logs: str | None = None) -> SiteStore:
        """Create (or reopen) the store of ``site`` with a new key pair in the folder
        ``path``; ``objects`` and ``logs`` put objects and site logs on a URL instead.

        Raises :class:`BadInput` if the folder already belongs to another site.
        """
        check_site(site)
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        config_path = root / "config.yaml"
        config = load(config_path, StoreFile, "store config", missing_ok=True)
        if config.site not in (None, site):
            raise BadInput(f"{root} already belongs to site {config.site}; "
                           "use another folder for another site")
        config.site = site
        config.objects = objects or config.objects
        config.logs = logs or config.logs
        config_path.write_text(yaml.safe_dump(msgspec.to_builtins(config), sort_keys=False))
        key_path = root / "keys" / f"{site}.key"
        if not key_path.exists():
            SiteKey.generate().save(key_path)
        store = cls(root)
        own = KeyringSite(site, store.key.public_key, list(urls))
        store.keyring.add(own)
        local = Keyring.load(root / "keyring.yaml")
        local.add(own)
        local.save(root / "keyring.yaml")
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str]) -> SiteStore:
        """Open a store, creating an empty cache-only one if the folder does not exist."""
        Path(path).mkdir(parents=True, exist_ok=True)
        return cls(path)

    def objects_for(self, site: str) -> ObjectStore:
        """Objects of any site's entries are in this store's objects."""
        return self.objects

    @property
    def sink(self) -> ObjectStore:
        """Where publishing puts objects."""
        return self.objects

    @property
    def tmp_dir(self) -> Path:
        """Scratch space for publishing (created on first use: with objects on an fsspec
        URL no local store makes it)."""
        path = self.path / "tmp"
        path.mkdir(exist_ok=True)
        return path

    @property
    def key(self) -> SiteKey:
        if not self.site:
            raise NotFound(f"the store at {self.path} has no site of its own: "
                           "run 'eurec4a-nt init SITE' first")
        return SiteKey.load(self.path / "keys" / f"{self.site}.key")

    def trust(self, keyring: Keyring) -> None:
        """Add sites to this store's own keyring file."""
        local = Keyring.load(self.path / "keyring.yaml")
        local.merge(keyring)
        local.save(self.path / "keyring.yaml")
        self.keyring.merge(keyring)

    # -- logs --------------------------------------------------------------------------

    def log(self, site: str) -> SiteLog:
        """The log of ``site`` (empty if nothing is known of it yet)."""
        check_site(site)
        with self._lock:
            if site not in self._logs:
                self._logs[site] = SiteLog(self.logs, self.db, site)
            return self._logs[site]

    def sites(self) -> list[str]:
        """Every site with a log here, and this store's own site."""
        names = set(self.db.sites())
        if self.logs.cheap_to_poll:
            names.update(self.logs.sites())
        if self.site:
            names.add(self.site)
        return sorted(names)

    def heads(self) -> dict[str, int]:
        """The highest seq held of every known site."""
        if self.logs.cheap_to_poll:
            return {site: self.log(site).seq for site in self.sites()}
        held = self.db.heads()
        return {site: held[site].seq if site in held else 0 for site in self.sites()}

    def refresh(self) -> list[str]:
        """Read what other writers added to the durable logs (new sites included);
        return the sites whose logs grew. A server calls this now and then when its
        logs are on object storage, shared with other processes."""
        before = self.db.heads()
        for site in sorted(set(self.logs.sites()) | set(before)):
            self.log(site).refresh()
        after = self.db.heads()
        return [s for s, h in after.items() if s not in before or before[s].seq != h.seq]

    def forks(self) -> list[Fork]:
        """Forks seen: two different validly signed commits with one seq of one site."""
        return self.db.forks()

    def state(self, site: str) -> SiteState:
        return self.log(site).current()

    def entries(self, site: str, at: At | None = None) -> Mapping[str, Entry]:
        """The current entries of ``site`` by name, read from the state when asked (see
        :class:`~eurec4a_nt.logstate.EntryMap`), or those at a past point ``at`` of its log
        (see :mod:`eurec4a_nt.versions`); raise :class:`NotFound` for an unknown site."""
        if at is not None:
            return self.index(site, at).entries
        if site not in self.sites():
            raise NotFound(f"unknown site {site!r}; known: {', '.join(self.sites()) or 'none'}")
        return self.state(site).entries

    def entries_under(self, site: str, prefix: str = "", at: At | None = None) -> Iterator[Entry]:
        """The entries of ``site`` whose names start with ``prefix``, in name order: a
        query per page now, from the index of a past point ``at``; :class:`NotFound`
        for an unknown site."""
        if at is not None:
            return self.index(site, at).under(prefix)
        self.entries(site)  # NotFound for an unknown site
        return self.state(site).entries.under(prefix)

    def entry(self, site: str, name: str, at: At | None = None) -> Entry:
        """The entry ``name`` of ``site`` (at a past point with ``at``); raise
        :class:`NotFound` if absent."""
        check_name(name)
        if at is not None:
            return self.index(site, at).entry(name)
        try:
            return self.entries(site)[name]
        except KeyError:
            raise NotFound(f"{site} has no entry {name!r}") from None

    def index(self, site: str, at: At | None = None) -> SiteIndex:
        """``site``'s entries by name, now or at a past point of its log (replayed once
        per point and kept for the next few asks); :class:`NotFound` for an unknown site."""
        now = self.listings.get(site)
        if at is None or position(self.log(site), at) >= now.seq:
            return now
        key = (site, position(self.log(site), at))
        with self._lock:
            found = self._past.get(key)
        if found is None:
            found = index_at(self.log(site), key[1], self.product_map(site))
            with self._lock:
                self._past[key] = found
                while len(self._past) > 16:
                    self._past.pop(next(iter(self._past)))
        return found

    def product_map(self, site: str) -> dict[str, ProductRule]:
        """The product map of ``site`` (``products``, or ``products_of`` for another
        site, in this store's config); empty if it has none."""
        return self.products.get(site, {})

    def versions(self, site: str, name: str) -> list[Version]:
        """Every version of ``site``'s entry ``name``, removed ones included, oldest first."""
        self.entries(site)  # NotFound for an unknown site
        name = check_name(name)
        return history(self.log(site).changing(name), site, name)

    def folders(self, site: str, at: At | None = None) -> SiteFolders | SiteIndex:
        """``site``'s folders and series (``folder``, ``product``, ``members``, ``days``):
        read from the summaries in the log state now (a folder costs its own rows, see
        :mod:`eurec4a_nt.summaries`), from the site's index at a past point or for a
        site with a product map; :class:`NotFound` for an unknown site."""
        if at is not None or self.product_map(site):
            return self.index(site, at)
        self.entries(site)  # NotFound for an unknown site; the state brought up to date
        return SiteFolders(self.db, site)

    def warm(self) -> None:
        """Make ready what readers ask first (a server does this as it starts): every
        site's folder summaries (made again once where an earlier version wrote the
        state), which commits changed each name (likewise), then every site's index."""
        for site in self.sites():
            self.db.summarize(site)
            self.db.index_changes(site)
        self.listings.warm()

    def folder(self, site: str, prefix: str = "", at: At | None = None) -> Folder:
        """A folder of ``site``'s entries (see :class:`~eurec4a_nt.folders.Folder`)."""
        return self.folders(site, at).folder(prefix)

    def series_entries(self, product: Product, start: datetime, end: datetime,
                       at: At | None = None) -> list[Entry]:
        """The entries of a series product with a name time in ``[start, end)``."""
        return self.folders(product.site, at).members(product, start, end)

    def summary(self, at: At | None = None) -> dict[str, dict[str, Any]]:
        """Per known site: log seq and head, time of the last commit, number of entries,
        and whether it is this store's own site; with ``at``, per site with commits by
        then, as it was then."""
        if at is not None:
            past = {site: self.index(site, at) for site in self.sites()}
            return {site: {"seq": i.seq, "head": i.head, "time": time_at(self.log(site), i.seq),
                           "entries": len(i.entries), "own": site == self.site}
                    for site, i in past.items() if i.seq}
        out = {}
        self.heads()  # brings cheaply polled logs up to date
        held = self.db.heads()
        forked = {f.site for f in self.forks()}
        for site in self.sites():
            head = held.get(site)
            out[site] = {"seq": head.seq if head else 0, "head": head.head if head else None,
                         "time": head.time if head else "", "entries": head.entries if head else 0,
                         "own": site == self.site}
            if site in forked:
                out[site]["forked"] = True
        return out

    def catalog_path(self) -> Path:
        """Write the intake catalogs of every site (``catalog/``) and return the top one."""
        directory = self.path / "catalog"
        options = {"store": "{{ CATALOG_DIR }}/../.."}
        sites = self.summary()
        for site in sites:
            write_atomic(directory / "sites" / f"{site}.yaml",
                         dump(site_catalog(site, self.state(site).entries, options)))
        top = directory / "catalog.yaml"
        write_atomic(top, dump(top_catalog(sites, "{{{{ CATALOG_DIR }}}}/sites/{site}.yaml")))
        return top

    def prefetch(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise BadInput("prefetch asks a site server to fetch data from other sites: "
                       "give server= (or set EUREC4A_NT_SERVER)")

    def prefetch_rules(self) -> list[dict[str, Any]]:
        """A store has no prefetch rules (a site server keeps them)."""
        return []

    def unprefetch(self, rule_id: int) -> None:
        raise NotFound(f"no prefetch rule {rule_id}: a local store has none (give server=)")

    def commit(self, changes: list[Change]) -> Commit:
        """Sign and append changes to this site's own log; every
        :data:`~eurec4a_nt.checkpoint.CHECKPOINT_EVERY` commits, the commit names a
        checkpoint of the state it follows (stored in this store's objects first)."""
        from .checkpoint import checkpoint_due

        if not self.site:
            raise NotFound(f"the store at {self.path} has no site of its own: "
                           "run 'eurec4a-nt init SITE' first")
        log = self.log(self.site)
        log.refresh()
        key = self.key
        return log.commit(key, changes, checkpoint_due(key, self.db, self.site, self.objects))

    def checkpoint(self, site: str) -> CheckpointRef | None:
        """The newest checkpoint of ``site``'s log this store hands out (over HTTP and
        links): one a commit held here names, whose file record and blocks are all held
        here (a record kept without its blocks, or a damaged one, is not handed out)."""
        found = self.db.checkpoint(site)
        if found is None:
            return None
        try:
            blocks = [oid for oid, _ in children(self.objects.get(found.root))]
        except (Corrupt, ObjectMissing):
            return None
        return None if self.objects.missing(blocks) else found

    def start_from(self, raw: bytes) -> bool:
        """Start the log of another site here at the checkpoint ``raw``, once its
        signature verifies against the keyring (:class:`BadCommit` if not); return
        False if this store holds that seq already."""
        from .checkpoint import parse_checkpoint

        checkpoint = parse_checkpoint(raw, self.keyring)
        if checkpoint.site == self.site:
            raise BadCommit("a site's own log never starts at a checkpoint")
        return self.log(checkpoint.site).start_from(checkpoint)

    def receive(self, raws: Iterable[bytes]) -> tuple[list[Commit], list[str]]:
        """Verify and append commits from elsewhere, in order.

        Returns the commits newly appended and the reasons others were rejected.
        A rejected commit of one site does not stop commits of other sites.
        """
        added: list[Commit] = []
        rejected: list[str] = []
        broken: set[str] = set()
        for raw in raws:
            commit = None
            try:
                commit = parse_commit(raw)
                if commit.site in broken:
                    continue
                log = self.log(commit.site)
                if commit.site == self.site and commit.seq > log.seq:
                    raise BadCommit(f"commit {commit.label} claims to be from this site; "
                                    "only this site writes its own log")
                if log.append(commit, self.keyring):
                    added.append(commit)
            except BadCommit as exc:
                rejected.append(str(exc))
                if commit is not None:
                    broken.add(commit.site)
        return added, rejected
