"""Commands on what is held where: prefetch rules, this machine's block cache, and
bundles that carry data without a link."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import BadInput
from ..sizes import human_size
from .common import add_store, add_target, open_target, site_store


def cmd_prefetch(args: argparse.Namespace) -> int:
    from ..api import prefetch, prefetch_rules, unprefetch

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
            for refused in r.get("refused", []):
                print(f"      {refused}")
    if args.list or args.remove:
        return 0
    status = prefetch(args.topic, sites=args.site, names=args.name, wait=not args.no_wait,
                      progress=False if args.quiet else None, **target)
    print(f"prefetch rule {status['id']}: {status['complete']}/{status['entries']} entries held "
          f"({status['objects_held']}/{status['objects_needed']} objects)")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from ..config import cache_cap, cache_dir, save_config
    from ..settings import size_setting
    from ..stores.capped import CappedStore
    from ..stores.local import LocalStore

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


def cmd_bundle_export(args: argparse.Namespace) -> int:
    from ..bundles import export_bundle

    store = site_store(args)
    report = export_bundle(store, args.file, sites=args.site, topics=args.topic, names=args.name,
                           since=args.since, until=args.until)
    print(f"{args.file}: {report.commits} commits, {report.objects} objects, {human_size(report.bytes)}")
    if report.missing:
        print(f"{report.missing} object(s) of the selected entries are not held in {store.path} "
              "and are not in the bundle", file=sys.stderr)
    return 0


def cmd_bundle_import(args: argparse.Namespace) -> int:
    from ..bundles import import_bundle

    report = import_bundle(args.file, open_target(args))
    sites = sorted({c.site for c in report.commits})
    print(f"imported {len(report.commits)} commits ({', '.join(sites) or 'all already held'}), "
          f"{report.objects_new} objects new, {report.objects_held} already held")
    for reason in report.rejected:
        print(f"rejected: {reason}", file=sys.stderr)
    return 1 if report.rejected else 0


def add_commands(sub: Any) -> None:
    """Add this module's commands to the subparsers ``sub``."""
    p = sub.add_parser("prefetch", help="make the site server hold entries of some topics; list or remove rules")
    p.add_argument("--topic", action="append", default=[], help="entries of this topic (repeatable)")
    p.add_argument("--site", action="append", default=[], help="only entries of this site (repeatable)")
    p.add_argument("--name", action="append", default=[], help="SITE/NAME glob pattern (repeatable)")
    p.add_argument("--no-wait", action="store_true", help="add the rule and return at once")
    p.add_argument("--list", action="store_true", help="list the rules, what each holds and what is to come")
    p.add_argument("--remove", action="append", type=int, default=[], metavar="ID",
                   help="remove the rule with this id (see --list; repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_target(p)
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
    add_store(b, "site store to export from")
    b.set_defaults(func=cmd_bundle_export)
    b = bsub.add_parser("import", help="verify a bundle, then hold its entries here")
    b.add_argument("file", help="bundle file to read")
    add_target(b)
    b.set_defaults(func=cmd_bundle_import)
