"""The ``eurec4a-nt`` command: the same verbs as the Python API, plus the server.

Errors are one clear line on stderr and a non-zero exit, never a traceback
(``EUREC4A_NT_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .config import DEFAULT_STORE, settings
from .errors import BadInput, NotFound, NTError
from .sizes import human_size


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help=f"local site store (or EUREC4A_NT_STORE; default {DEFAULT_STORE} if it exists)")
    p.add_argument("--server", help="site server URL (or EUREC4A_NT_SERVER)")
    p.add_argument("--token", help="access token (or EUREC4A_NT_TOKEN)")


def _backend(args: argparse.Namespace) -> Any:
    from .backends import open_backend

    return open_backend(store=args.store, server=args.server, token=args.token)


# -- commands ------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from .api import init_site
    from .sitestore import is_url

    store = args.store or DEFAULT_STORE
    site = init_site(args.site, store=store, objects=args.objects, urls=args.url, local=args.local)
    if is_url(store):
        local = args.local or DEFAULT_STORE
        print(f"site {args.site} ready: objects and site log in {store}; its private key, config and "
              f"state in the local folder {local} (key mode 0600; copy the folder to every machine "
              f"that serves {args.site}, then 'eurec4a-nt serve --store {store} --local FOLDER').")
    else:
        print(f"site {args.site} ready in {store}; its private key stays there (mode 0600).")
    print("Add this to the campaign keyring (catalogs/keyring.yaml, under 'sites:'):\n")
    print(site.to_yaml())
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .api import publish

    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except ValueError as exc:
        raise BadInput(f"--metadata is not valid JSON ({exc}); e.g. '{{\"instrument\": \"lidar\"}}'") from None
    obj = args.paths if len(args.paths) > 1 else args.paths[0]
    result = publish(obj, name=args.name, topics=args.topic, description=args.description,
                     metadata=metadata, format=args.format, store=args.store, server=args.server,
                     token=args.token, progress=False if args.quiet else None)
    for entry in result if isinstance(result, list) else [result]:
        print(f"published {entry.path} ({entry.kind}, {entry.format}, {human_size(entry.size)}) "
              f"topics={','.join(entry.topics) or '-'}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .api import remove

    remove(args.names, store=args.store, server=args.server, token=args.token)
    print(f"removed {', '.join(args.names)}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    backend = _backend(args)
    sites = [args.site] if args.site else backend.sites()
    for site in sites:
        page, total = _page(backend, site, args)
        print(f"{site} ({total} entries)")
        for entry in page:
            print(f"  {entry.name:48} {entry.format:9} {human_size(entry.size):>9}  "
                  f"{','.join(entry.topics):20} {entry.published}")
        if len(page) == args.limit:
            print(f"  ... more after {page[-1].name} (--after {page[-1].name}, or --limit)")
    return 0


def _page(backend: Any, site: str, args: argparse.Namespace) -> tuple[list[Any], int]:
    """Up to ``--limit`` entries of ``site`` in name order (``--prefix``, ``--after``,
    ``--topic``), and how many the site has; from a local store's state this reads only
    the page (a topic filter reads on until the page is full)."""
    if hasattr(backend, "state"):
        backend.entries(site)  # NotFound for an unknown site
        state = backend.state(site)
        page: list[Any] = []
        after = args.after or ""
        while len(page) < args.limit:
            batch = state.list(args.prefix or "", after, 1000)
            page += [e for e in batch if not args.topic or args.topic in e.topics]
            if len(batch) < 1000:
                break
            after = batch[-1].name
        return page[:args.limit], state.count()
    entries = backend.entries(site)
    chosen = sorted((e for e in entries.values() if e.name.startswith(args.prefix or "")
                     and e.name > (args.after or "") and (not args.topic or args.topic in e.topics)),
                    key=lambda e: e.name)
    return chosen[:args.limit], len(entries)


def cmd_get(args: argparse.Namespace) -> int:
    from .progress import progress_bar

    s = settings(args.store, args.server, args.token)
    source = args.path.removeprefix("nt://")
    if s.server and args.at is None and _get_file(s.server, s.token, source, args):
        return 0
    import fsspec

    from .client import SiteClient
    from .download import download
    from .manifests import RefReader

    options = {"store": s.store} if s.store else {"server": s.server, "token": s.token}
    fs = fsspec.filesystem("nt", **options, at=args.at)
    try:
        info = fs.info(source)
    except FileNotFoundError:
        raise NotFound(f"no entry or file {source!r} (see 'eurec4a-nt ls')") from None
    dest = Path(args.dest or source.rsplit("/", 1)[-1])
    with progress_bar(info["size"], f"get {source}", False if args.quiet else None) as bar:
        ref, objects = fs.ref(source) if info["type"] == "file" else (None, None)
        if (ref is not None and objects is not None and ref.data is None and isinstance(fs.backend, SiteClient)
                and args.at is None):
            download(fs.backend, source, dest, RefReader(ref, objects).blocks, bar.update)
        elif info["type"] == "file":
            tmp = dest.with_name(dest.name + ".part")
            with fs.open(source) as src, open(tmp, "wb") as out:
                while data := src.read(4 << 20):
                    out.write(data)
                    bar.update(len(data))
            os.replace(tmp, dest)
        else:
            fs.get(source, str(dest), recursive=True)
    print(f"{source} -> {dest}")
    return 0


def _get_file(server: str, token: str | None, source: str, args: argparse.Namespace) -> bool:
    """``get`` of a file entry from a server in two small requests and one copy (no
    catalog, no fsspec); False for anything else (a path inside a folder or zarr entry)."""
    from .chunking import FileRecord
    from .client import SiteClient
    from .download import download
    from .progress import progress_bar

    client = SiteClient(server, token=token)
    site, _, name = source.partition("/")
    try:
        entry = client.entry(site, name, fresh=True)
    except (NotFound, BadInput):
        return False
    if entry.kind != "file":
        return False
    record = FileRecord.from_bytes(client.objects_for(site).get(entry.root))
    dest = Path(args.dest or source.rsplit("/", 1)[-1])
    with progress_bar(entry.size, f"get {source}", False if args.quiet else None) as bar:
        download(client, source, dest, [(b.id, b.offset, b.length) for b in record.blocks], bar.update)
    print(f"{source} -> {dest}")
    return True


def cmd_log(args: argparse.Namespace) -> int:
    if args.site and "/" in args.site:
        return _versions(args)
    if args.server:
        raise BadInput("a whole log is shown from a store (--store); give SITE/NAME for "
                       "one entry's versions from a server")
    from .sitestore import SiteStore

    store = SiteStore(args.store or DEFAULT_STORE)
    sites = [args.site] if args.site else store.sites()
    for site in sites:
        log = store.log(site)
        after = args.after if args.after is not None else max(log.seq - args.limit, 0)
        for commit in log.commits_after(after, args.limit):
            for change in commit.changes:
                print(f"{commit.label:24} {commit.time}  {change.op:6} {change.name}")
    return 0


def _versions(args: argparse.Namespace) -> int:
    """``log SITE/NAME``: every version of one entry."""
    site, name = args.site.split("/", 1)
    for v in _backend(args).versions(site, name):
        e = v.entry
        what = f"put    {e.format:9} {human_size(e.size):>9}  {e.root[:12]}" if e else "remove"
        print(f"{site}#{v.seq:<5} {v.time}  {what}"
              + (f"  replaces #{v.replaces}" if v.replaces else "")
              + (f"  replaced by #{v.replaced_by}" if v.replaced_by else ""))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .purge import Retention

    rule = Retention(args.keep, args.keep_days)
    s = settings(args.store, args.server, args.token)
    if s.server:
        from .client import SiteClient

        report = SiteClient(s.server, token=s.token, cache=s.cache).purge(rule, args.dry_run)
    else:
        from .purge import purge
        from .sitestore import SiteStore

        done = purge(SiteStore(s.store or DEFAULT_STORE), rule, args.dry_run)
        report = {"versions": done.versions, "objects": len(done.objects), "bytes": done.bytes}
    verb = "would free" if args.dry_run else "freed"
    print(f"{verb} {human_size(report['bytes'])} ({report['objects']} objects) of {report['versions']} old versions")
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from .join import join
    from .sitestore import SiteStore

    store = SiteStore(args.store or DEFAULT_STORE)
    for site in args.site:
        done = join(store, args.server, site, token=args.token)
        start = f"from its checkpoint at seq {done['checkpoint']}, " if done["checkpoint"] else ""
        print(f"{site}: {start}{done['commits']} commits fetched; seq {done['seq']} held")
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from .fsck import fsck
    from .sitestore import SiteStore

    report = fsck(SiteStore(args.store or DEFAULT_STORE))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_token(args: argparse.Namespace) -> int:
    from .server.auth import Tokens
    from .sitestore import SiteStore

    tokens = Tokens(SiteStore(args.store or DEFAULT_STORE).path / "tokens.yaml")
    if args.action == "create":
        print(tokens.create(args.name, args.scope))
        print(f"({args.scope} token '{args.name}'; shown once: give it to the user as EUREC4A_NT_TOKEN)",
              file=sys.stderr)
    elif args.action == "revoke":
        gone = tokens.revoke(args.which)
        print(f"revoked {gone.scope} token {gone.id} '{gone.name}' (the server refuses it from now on)")
    else:
        for t in tokens.records():
            print(f"{t.id}  {t.scope:5}  {t.created:20}  {t.name}")
    return 0


def cmd_keyring(args: argparse.Namespace) -> int:
    from .keyring import Keyring
    from .sitestore import SiteStore

    store = SiteStore(args.store or DEFAULT_STORE)
    if args.file:
        store.trust(Keyring.load(Path(args.file), missing_ok=False))
    for site in sorted(store.keyring.sites.values(), key=lambda s: s.name):
        print(f"{site.name:16} {site.public_key}  {' '.join(site.urls)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .client import SiteClient

    s = settings(args.store, args.server, args.token)
    if not s.server:
        raise BadInput("status asks a site server: give --server URL (or set EUREC4A_NT_SERVER)")
    status = SiteClient(s.server, token=s.token, cache=s.cache).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    objects = status["objects"]
    print(f"{status['site']}: {objects['count']} objects, {human_size(objects['bytes'])}, "
          f"{status['wants']} pending wants")
    for link in status["links"]:
        since = link.get("offline_since")
        state = "connected" if link.get("connected") else " ".join(filter(None, [
            "offline", f"since {time.strftime('%H:%M:%S', time.gmtime(since))} UTC" if since else "",
            f"({link['error']})" if link.get("error") else ""]))
        budget = f" / budget {human_size(link['budget'])}" if link.get("budget") else ""
        print(f"  link {link['link']:28} {state:12} queue {link.get('queue', 0):5}  "
              f"sent {human_size(link['sent_today'])} received {human_size(link['received_today'])}{budget}")
        for item in link.get("waiting", []):
            print(f"       next: {item['what']} ({item['class']}{', held back' if item['held back'] else ''})")
    for site, info in status["sites"].items():
        print(f"  site {site:20} {info['entries']:6} entries  seq {info['seq']}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .config import cache_cap, cache_dir, save_config
    from .settings import size_setting
    from .stores.capped import CappedStore
    from .stores.local import LocalStore

    if args.cap is not None:
        cap = size_setting(args.cap, "--cap")
        print(f"cache cap {human_size(cap)} saved in {save_config(cache_cap=cap)}")
    folder = cache_dir(args.cache)
    blocks = CappedStore(LocalStore(folder), cache_cap())
    if args.clear:
        print(f"cleared {human_size(blocks.clear())} from {folder}")
    elif blocks.usage()[1] > blocks.cap:
        blocks.evict()
    count, size = blocks.usage()
    print(f"block cache {folder}: {count} blocks, {human_size(size)} of a {human_size(blocks.cap)} cap")
    return 0


def cmd_prefetch(args: argparse.Namespace) -> int:
    from .api import prefetch, prefetch_rules, unprefetch

    target = {"store": args.store, "server": args.server, "token": args.token}
    if (args.list or args.remove) and (args.topic or args.site or args.name):
        raise BadInput("--list and --remove add no rule: give --topic/--site/--name in a command of its own")
    for rule_id in args.remove:
        unprefetch(rule_id, **target)
        print(f"removed prefetch rule {rule_id}")
    if args.list:
        for r in prefetch_rules(**target):
            what = " ".join([*(f"topic={t}" for t in r["topics"]), *(f"site={s}" for s in r["sites"]),
                             *(f"name={n}" for n in r["names"])])
            print(f"{r['id']:4}  {what:40} {r['complete']}/{r['entries']} entries here, "
                  f"{human_size(r.get('bytes_missing', 0))} to come")
    if args.list or args.remove:
        return 0
    status = prefetch(args.topic, sites=args.site, names=args.name, wait=not args.no_wait,
                      progress=False if args.quiet else None, **target)
    print(f"prefetch rule {status['id']}: {status['complete']}/{status['entries']} entries held "
          f"({status['objects_held']}/{status['objects_needed']} objects)")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .watch.folder import FolderWatcher, default_state_path, watch_once
    from .watch.rules import WatchRule, parse_rules, parse_topic_patterns
    from .watch.state import WatchState

    rule: WatchRule = parse_rules([{
        "dir": args.dir, "prefix": args.prefix, "name": args.name, "topics": args.topic,
        "topics-by-pattern": parse_topic_patterns(args.topic_for),
        "include": args.include or ["*"], "exclude": args.exclude,
        "settle": args.settle, "poll": args.poll, "interval": args.interval,
    }], "watch options")[0]
    target = _backend(args)
    state = WatchState(Path(args.state) if args.state else default_state_path(target))
    watcher = FolderWatcher(rule, target, state)
    if args.once:
        entries = watch_once(watcher)
    else:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"watching {watcher.root} (Ctrl-C stops)", flush=True)
        try:
            watcher.run(stop)
        except KeyboardInterrupt:
            pass
        entries = watcher.published
    state.close()
    print(f"published {len(entries)} file(s)")
    return 0


def cmd_bundle_export(args: argparse.Namespace) -> int:
    from .bundles import export_bundle
    from .sitestore import SiteStore

    store = SiteStore(args.store or DEFAULT_STORE)
    report = export_bundle(store, args.file, sites=args.site, topics=args.topic, names=args.name,
                           since=args.since, until=args.until)
    print(f"{args.file}: {report.commits} commits, {report.objects} objects, {human_size(report.bytes)}")
    if report.missing:
        print(f"{report.missing} object(s) of the selected entries are not held in {store.path} "
              "and are not in the bundle", file=sys.stderr)
    return 0


def cmd_bundle_import(args: argparse.Namespace) -> int:
    from .bundles import import_bundle

    report = import_bundle(args.file, _backend(args))
    sites = sorted({c.site for c in report.commits})
    print(f"imported {len(report.commits)} commits ({', '.join(sites) or 'all already held'}), "
          f"{report.objects_new} objects new, {report.objects_held} already held")
    for reason in report.rejected:
        print(f"rejected: {reason}", file=sys.stderr)
    return 1 if report.rejected else 0


def cmd_check(args: argparse.Namespace) -> int:
    from .check import backend_sources, catalog_sources, check

    if args.catalog:
        import intake

        found = catalog_sources(intake.open_catalog(args.catalog))
        if args.site:
            found = ((p, s) for p, s in found if p.split("/", 1)[0] in args.site)
    else:
        found = backend_sources(_backend(args), args.site)
    failed = total = 0
    for result in check(found, args.topic, args.sample, args.seed):
        total += 1
        failed += not result.ok
        if args.verbose or not result.ok:
            print(result.line(), flush=True)
    print(f"checked {total} entries: {failed} failed")
    return 1 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.run import serve

    return serve(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .extras import require

    require("xarray", "science", "the demo")
    from .demo import run_demo

    return run_demo(args)


# -- parser --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="eurec4a-nt", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a site store and its signing key")
    p.add_argument("site", help="the site's name, e.g. RV-Meteor")
    p.add_argument("--store", help=f"folder (default {DEFAULT_STORE}), or s3://bucket/prefix for objects "
                   "and the site log on S3 (the key stays in --local)")
    p.add_argument("--local", help=f"with an s3:// --store: the local folder for key, config and state "
                   f"(default {DEFAULT_STORE})")
    p.add_argument("--objects", help="keep objects on an fsspec URL (e.g. s3://bucket/prefix)")
    p.add_argument("--url", action="append", default=[], help="URL this site's server is reached at")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("publish", help="publish files, folders or zarr stores")
    p.add_argument("paths", nargs="+", help="files, folders or zarr stores")
    p.add_argument("--name", help="entry name (default: the file name; a prefix for several paths)")
    p.add_argument("--topic", action="append", default=[], help="topic (repeatable)")
    p.add_argument("--description", default="", help="a line or a paragraph (Markdown) on what it is")
    p.add_argument("--metadata", help="JSON object of extra metadata")
    p.add_argument("--format", help="override the guessed format")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_target(p)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("remove", help="remove entries of this site")
    p.add_argument("names", nargs="+", help="entry names (without the site)")
    _add_target(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("ls", help="list sites and entries (a page of each site, in name order)")
    p.add_argument("site", nargs="?", help="only this site (default: every site)")
    p.add_argument("--topic", help="only entries of this topic")
    p.add_argument("--prefix", help="only names starting with this (e.g. sondes/)")
    p.add_argument("--after", help="start after this name (the last of the previous page)")
    p.add_argument("--limit", type=int, default=200, help="entries shown per site (default 200)")
    _add_target(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("get", help="copy an entry (SITE/NAME) to a local file or folder")
    p.add_argument("path", help="SITE/NAME of an entry, or a file inside it (nt:// optional)")
    p.add_argument("dest", nargs="?", help="local file or folder (default: the last part of the name)")
    p.add_argument("--at", help="the version at this point of the log: a seq or an ISO 8601 time")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_target(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("log", help="show site logs (the newest commits; --after N pages), "
                                   "or every version of one entry (SITE/NAME)")
    p.add_argument("site", nargs="?", metavar="SITE[/NAME]",
                   help="only this site's log, or one entry's versions (default: every site)")
    p.add_argument("--after", type=int, help="show commits after this seq")
    p.add_argument("--limit", type=int, default=50, help="commits shown per site (default 50)")
    _add_target(p)
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("purge", help="delete the data of old versions a retention rule lets go of")
    p.add_argument("--keep", type=int, default=0, help="keep this many replaced versions of each entry")
    p.add_argument("--keep-days", type=float, help="keep versions replaced less than this many days ago")
    p.add_argument("--dry-run", action="store_true", help="say what would be freed, delete nothing")
    _add_target(p)
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("join", help="start other sites' logs from their newest checkpoint at a server")
    p.add_argument("server", help="site server URL holding the logs")
    p.add_argument("--site", action="append", required=True, help="site whose log to join (repeatable)")
    p.add_argument("--store", help=f"local site store (default {DEFAULT_STORE})")
    p.add_argument("--token", help="read token, if the server needs one")
    p.set_defaults(func=cmd_join)

    p = sub.add_parser("fsck", help="re-hash objects, verify logs, list missing objects")
    p.add_argument("--store", help=f"local site store (default {DEFAULT_STORE})")
    p.set_defaults(func=cmd_fsck)

    p = sub.add_parser("token", help="manage access tokens of a site server")
    tsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it once")
    t.add_argument("--name", default="user", help="who or what holds it (default user)")
    t.add_argument("--scope", choices=["write", "read"], default="write",
                   help="write (publish, remove, prefetch; reads too) or read (default write)")
    t.add_argument("--store", help=f"the server's site store (default {DEFAULT_STORE})")
    t.set_defaults(func=cmd_token)
    t = tsub.add_parser("list", help="list the tokens: id, scope, created, name (never the token)")
    t.add_argument("--store", help=f"the server's site store (default {DEFAULT_STORE})")
    t.set_defaults(func=cmd_token)
    t = tsub.add_parser("revoke", help="revoke a token: the server refuses it at once")
    t.add_argument("which", metavar="ID_OR_NAME", help="its id from 'token list', or its name if unique")
    t.add_argument("--store", help=f"the server's site store (default {DEFAULT_STORE})")
    t.set_defaults(func=cmd_token)

    p = sub.add_parser("keyring", help="show the trusted keys; --import a campaign keyring")
    p.add_argument("--import", dest="file", metavar="FILE", help="merge this keyring file into the store's")
    p.add_argument("--store", help=f"local site store (default {DEFAULT_STORE})")
    p.set_defaults(func=cmd_keyring)

    p = sub.add_parser("status", help="a site server's links, queues and traffic")
    p.add_argument("--json", action="store_true", help="the whole status as JSON")
    _add_target(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("prefetch", help="make the site server hold entries of some topics; list or remove rules")
    p.add_argument("--topic", action="append", default=[], help="entries of this topic (repeatable)")
    p.add_argument("--site", action="append", default=[], help="only entries of this site (repeatable)")
    p.add_argument("--name", action="append", default=[], help="SITE/NAME glob pattern (repeatable)")
    p.add_argument("--no-wait", action="store_true", help="add the rule and return at once")
    p.add_argument("--list", action="store_true", help="list the rules, what each holds and what is to come")
    p.add_argument("--remove", action="append", type=int, default=[], metavar="ID",
                   help="remove the rule with this id (see --list; repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_target(p)
    p.set_defaults(func=cmd_prefetch)

    p = sub.add_parser("cache", help="this machine's block cache: its size; --clear it; --cap its size")
    p.add_argument("--clear", action="store_true", help="delete every cached block (catalogs stay)")
    p.add_argument("--cap", metavar="SIZE", help="keep at most this much (e.g. 5GB), least recently used "
                   "out; saved as cache-cap in the config file (EUREC4A_NT_CACHE_CAP overrides it)")
    p.add_argument("--cache", metavar="FOLDER", help="the cache folder (or EUREC4A_NT_CACHE; "
                   "default ~/.cache/eurec4a-nt)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("bundle", help="carry data without a link: export and import bundle files")
    bsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = bsub.add_parser("export", help="write signed commits and their objects to one file (CAR v1)")
    b.add_argument("file", help="bundle file to write")
    b.add_argument("--site", action="append", default=[], help="site whose log to export (default: the store's)")
    b.add_argument("--topic", action="append", default=[], help="only objects of entries of this topic")
    b.add_argument("--name", action="append", default=[], help="only objects of entries matching SITE/NAME glob")
    b.add_argument("--since", help="only objects of versions published since this time (ISO 8601)")
    b.add_argument("--until", help="only objects of versions published until this time (ISO 8601)")
    b.add_argument("--store", help=f"site store to export from (default {DEFAULT_STORE})")
    b.set_defaults(func=cmd_bundle_export)
    b = bsub.add_parser("import", help="verify a bundle, then hold its entries here")
    b.add_argument("file", help="bundle file to read")
    _add_target(b)
    b.set_defaults(func=cmd_bundle_import)

    p = sub.add_parser("check", help="open every entry as a user would; exit 1 if any fails")
    p.add_argument("--catalog", help="an intake catalog file or URL instead of --server/--store")
    p.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    p.add_argument("--topic", action="append", default=[], help="only entries of this topic (repeatable)")
    p.add_argument("--sample", type=int, help="check at most this many entries per topic")
    p.add_argument("--seed", type=int, default=0, help="which sample (default 0: the same each run)")
    p.add_argument("-v", "--verbose", action="store_true", help="list the entries that open, too")
    _add_target(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("watch", help="publish the files of a folder as they are written")
    p.add_argument("dir", help="the folder to watch")
    p.add_argument("--prefix", default="", help="entry names start with this (e.g. lidar/)")
    p.add_argument("--name", default="{path}",
                   help="entry name after the prefix: {path} {name} {stem} {suffix} {parent}")
    p.add_argument("--topic", action="append", default=[], help="topic of every file (repeatable)")
    p.add_argument("--topic-for", action="append", default=[], metavar="GLOB=TOPIC",
                   help="topic of files matching GLOB (repeatable)")
    p.add_argument("--include", action="append", default=[], help="glob of files to publish (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="glob of files to leave out (repeatable)")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds a file's size and mtime must stay unchanged (default 5)")
    p.add_argument("--poll", action="store_true", help="scan instead of OS events (network mounts)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scans with --poll")
    p.add_argument("--once", action="store_true", help="publish what is complete now, then stop")
    p.add_argument("--state", help="state file (default: in the store, or the cache for a server)")
    _add_target(p)
    p.set_defaults(func=cmd_watch)

    from .server.run import add_arguments

    p = sub.add_parser("serve", help="run a site server")
    add_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="a small campaign on this machine: hub, ships, observatory")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--dir", default=DEFAULT_STORE, help=f"where the sites keep their stores (default {DEFAULT_STORE})")
    p.add_argument("--port", type=int, default=8047, help="port of the hub (others follow; 0: any free ports)")
    p.add_argument("--speed", type=float, default=1.0, help="publish this many times faster")
    p.set_defaults(func=cmd_demo)
    return top


def _explained(exc: BaseException) -> BaseException:
    """A network error from the HTTP library as our one-line :class:`Unreachable`."""
    if not type(exc).__module__.startswith(("requests", "urllib3")):
        return exc
    from urllib.parse import urlsplit

    from .stores.http import unreachable

    url = urlsplit(str(getattr(getattr(exc, "request", None), "url", "") or ""))
    return unreachable(f"{url.scheme}://{url.netloc}" if url.netloc else "the site server", exc)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("EUREC4A_NT_LOG", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (NTError, OSError, ValueError) as exc:
        if os.environ.get("EUREC4A_NT_DEBUG"):
            raise
        message = " ".join(str(_explained(exc)).split())  # one line, whatever the message holds
        print(f"eurec4a-nt {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
