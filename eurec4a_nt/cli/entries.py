"""Commands on entries: publish, remove, ls, get, log, watch and check."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..config import settings
from ..errors import BadInput, NotFound
from ..sizes import human_size
from .common import add_target, open_target, site_store

#: Entries a quiet publish lists one by one; beyond, it says how many in one line.
QUIET_LINES = 20


def cmd_publish(args: argparse.Namespace) -> int:
    from ..api import publish

    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except ValueError as exc:
        raise BadInput(f"--metadata is not valid JSON ({exc}); e.g. '{{\"instrument\": \"lidar\"}}'") from None
    obj = args.paths if len(args.paths) > 1 else args.paths[0]
    result = publish(obj, name=args.name, topics=args.topic, description=args.description,
                     metadata=metadata, format=args.format, store=args.store, server=args.server,
                     token=args.token, progress=False if args.quiet else None)
    entries = result if isinstance(result, list) else [result]
    if args.quiet and len(entries) > QUIET_LINES:
        print(f"published {len(entries)} entries of {entries[0].site} "
              f"({human_size(sum(e.size for e in entries))}): {entries[0].name} ... {entries[-1].name}")
        return 0
    for entry in entries:
        print(f"published {entry.path} ({entry.kind}, {entry.format}, {human_size(entry.size)}) "
              f"topics={','.join(entry.topics) or '-'}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..api import remove

    remove(args.names, store=args.store, server=args.server, token=args.token)
    print(f"removed {', '.join(args.names)}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    backend = open_target(args)
    sites = [args.site] if args.site else backend.sites()
    for site in sites:
        page, total = _page(backend, site, args)
        print(f"{site} ({total} {'entry' if total == 1 else 'entries'})")
        for entry in page:
            print(f"  {entry.name:48} {entry.format:9} {human_size(entry.size):>9}  "
                  f"{','.join(entry.topics):20} {entry.published}")
        if len(page) == args.limit:
            print(f"  ... more after {page[-1].name} (--after {page[-1].name}, or --limit)")
    return 0


def positive(text: str) -> int:
    """An option's whole number of 1 or more (argparse says what is wrong otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _page(backend: Any, site: str, args: argparse.Namespace) -> tuple[list[Any], int]:
    """Up to ``--limit`` entries of ``site`` in name order (``--prefix``, ``--after``,
    ``--topic``), and how many the site has; from a local store's state this reads only
    the page (a topic filter reads on until the page is full), from a server a request
    per 1,000 entries shown."""
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
    backend.entries(site)  # NotFound for an unknown site, naming the known ones
    return backend.page(site, args.limit, prefix=args.prefix or "", after=args.after or "", topic=args.topic or "")


def cmd_get(args: argparse.Namespace) -> int:
    from ..progress import progress_bar

    s = settings(args.store, args.server, args.token)
    source = args.path.removeprefix("nt://")
    if s.server and args.at is None and _get_file(s.server, s.token, source, args):
        return 0
    import fsspec

    from ..client import SiteClient
    from ..download import download
    from ..manifests import RefReader

    options = {"store": s.store} if s.store else {"server": s.server, "token": s.token}
    fs = fsspec.filesystem("nt", **options, at=args.at)
    try:
        info = fs.info(source)
    except FileNotFoundError:
        raise NotFound(f"no entry or file {source!r} (see 'eurec4a-nt ls')") from None
    dest = _dest(args.dest, source)
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


def _dest(dest: str | None, source: str) -> Path:
    """Where ``get`` puts ``source``: ``dest``, or in it under the last part of the name
    when it is a folder or ends in '/' (made if missing); without it, that part here."""
    last = source.rstrip("/").rsplit("/", 1)[-1]
    if not dest:
        return Path(last)
    if dest.endswith("/") or Path(dest).is_dir():
        Path(dest).mkdir(parents=True, exist_ok=True)
        return Path(dest) / last
    return Path(dest)


def _get_file(server: str, token: str | None, source: str, args: argparse.Namespace) -> bool:
    """``get`` of a file entry from a server in two small requests and one copy (no
    catalog, no fsspec); False for anything else (a path inside a folder or zarr entry)."""
    from ..chunking import FileRecord
    from ..client import SiteClient
    from ..download import download
    from ..progress import progress_bar

    client = SiteClient(server, token=token)
    site, _, name = source.partition("/")
    try:
        entry = client.entry(site, name, fresh=True)
    except (NotFound, BadInput):
        return False
    if entry.kind != "file":
        return False
    record = FileRecord.from_bytes(client.objects_for(site).get(entry.root))
    dest = _dest(args.dest, source)
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
    store = site_store(args)
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
    for v in open_target(args).versions(site, name):
        e = v.entry
        what = f"put    {e.format:9} {human_size(e.size):>9}  {e.root[:12]}" if e else "remove"
        print(f"{site}#{v.seq:<5} {v.time}  {what}"
              + (f"  replaces #{v.replaces}" if v.replaces else "")
              + (f"  replaced by #{v.replaced_by}" if v.replaced_by else ""))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..watch.folder import FolderWatcher, default_state_path, watch_once
    from ..watch.rules import WatchRule, parse_rules, parse_topic_patterns
    from ..watch.state import WatchState

    rule: WatchRule = parse_rules([{
        "dir": args.dir, "prefix": args.prefix, "name": args.name, "topics": args.topic,
        "topics-by-pattern": parse_topic_patterns(args.topic_for),
        "include": args.include or ["*"], "exclude": args.exclude,
        "settle": args.settle, "poll": args.poll, "interval": args.interval,
    }], "watch options")[0]
    target = open_target(args)
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


def cmd_check(args: argparse.Namespace) -> int:
    from ..check import backend_sources, catalog_sources, check

    if args.catalog:
        import intake

        found = catalog_sources(intake.open_catalog(args.catalog))
        if args.site:
            found = ((p, s) for p, s in found if p.split("/", 1)[0] in args.site)
    else:
        found = backend_sources(open_target(args), args.site)
    failed = total = 0
    for result in check(found, args.topic, args.sample, args.seed):
        total += 1
        failed += not result.ok
        if args.verbose or not result.ok:
            print(result.line(), flush=True)
    print(f"checked {total} entries: {failed} failed")
    return 1 if failed else 0


def add_commands(sub: Any) -> None:
    """Add this module's commands to the subparsers ``sub``."""
    p = sub.add_parser("publish", help="publish files, folders or zarr stores")
    p.add_argument("paths", nargs="+", help="files, folders or zarr stores")
    p.add_argument("--name", help="entry name (default: the file name); for several paths, or ending "
                                  "in '/', the folder they go in")
    p.add_argument("--topic", action="append", default=[], help="topic (repeatable)")
    p.add_argument("--description", default="", help="a line or a paragraph (Markdown) on what it is")
    p.add_argument("--metadata", help="JSON object of extra metadata")
    p.add_argument("--format", help="override the guessed format")
    p.add_argument("-q", "--quiet", action="store_true",
                   help=f"no progress bar, and one line in all for more than {QUIET_LINES} entries")
    add_target(p)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("remove", help="remove entries of this site")
    p.add_argument("names", nargs="+", help="entry names (without the site)")
    add_target(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("ls", help="list sites and entries (a page of each site, in name order)")
    p.add_argument("site", nargs="?", help="only this site (default: every site)")
    p.add_argument("--topic", help="only entries of this topic")
    p.add_argument("--prefix", help="only names starting with this (e.g. sondes/)")
    p.add_argument("--after", help="start after this name (the last of the previous page)")
    p.add_argument("--limit", type=positive, default=200, help="entries shown per site (default 200)")
    add_target(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("get", help="copy an entry (SITE/NAME) to a local file or folder")
    p.add_argument("path", help="SITE/NAME of an entry, or a file inside it (nt:// optional)")
    p.add_argument("dest", nargs="?", help="local file, or a folder (existing, or ending in '/') to put it "
                                           "in (default: the last part of the name, here)")
    p.add_argument("--at", help="the version at this point of the log: a seq or an ISO 8601 time")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_target(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("log", help="show site logs (the newest commits; --after N pages), "
                                   "or every version of one entry (SITE/NAME)")
    p.add_argument("site", nargs="?", metavar="SITE[/NAME]",
                   help="only this site's log, or one entry's versions (default: every site)")
    p.add_argument("--after", type=int, help="show commits after this seq")
    p.add_argument("--limit", type=int, default=50, help="commits shown per site (default 50)")
    add_target(p)
    p.set_defaults(func=cmd_log)

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
    add_target(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("check", help="open every entry as a user would; exit 1 if any fails")
    p.add_argument("--catalog", help="an intake catalog file or URL instead of --server/--store")
    p.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    p.add_argument("--topic", action="append", default=[], help="only entries of this topic (repeatable)")
    p.add_argument("--sample", type=int, help="check at most this many entries per topic")
    p.add_argument("--seed", type=int, default=0, help="which sample (default 0: the same each run)")
    p.add_argument("-v", "--verbose", action="store_true", help="list the entries that open, too")
    add_target(p)
    p.set_defaults(func=cmd_check)
