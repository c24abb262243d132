"""Commands that set up and look after a site: init, serve, status, token, keyring, join,
fsck, purge, and the demo campaign."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..config import DEFAULT_STORE, settings
from ..errors import BadInput
from ..sizes import human_size
from .common import add_store, add_target, site_store


def cmd_init(args: argparse.Namespace) -> int:
    from ..api import init_site
    from ..sitestore import is_url

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


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.run import serve

    return serve(args)


def cmd_status(args: argparse.Namespace) -> int:
    from ..client import SiteClient

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
        for r in link.get("refused", []):
            print(f"       refused by {link.get('peer') or link['link']}: {r['site']}: {r['reason']}")
        for r in link.get("refusing", []):
            print(f"       refusing {link.get('peer') or link['link']}: {r['site']}: {r['reason']}")
    for site, info in status["sites"].items():
        print(f"  site {site:20} {info['entries']:6} entries  seq {info['seq']}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from ..server.auth import Tokens

    tokens = Tokens(site_store(args).path / "tokens.yaml")
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
    from ..keyring import Keyring

    store = site_store(args)
    if args.file:
        store.trust(Keyring.load(Path(args.file), missing_ok=False))
    for site in sorted(store.keyring.sites.values(), key=lambda s: s.name):
        print(f"{site.name:16} {site.public_key}  {' '.join(site.urls)}")
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from ..join import join

    store = site_store(args)
    for site in args.site:
        done = join(store, args.server, site, token=args.token)
        start = f"from its checkpoint at seq {done['checkpoint']}, " if done["checkpoint"] else ""
        print(f"{site}: {start}{done['commits']} commits fetched; seq {done['seq']} held")
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from ..fsck import fsck

    report = fsck(site_store(args))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_purge(args: argparse.Namespace) -> int:
    from ..purge import Retention

    rule = Retention(args.keep, args.keep_days)
    s = settings(args.store, args.server, args.token)
    if s.server:
        from ..client import SiteClient

        report = SiteClient(s.server, token=s.token, cache=s.cache).purge(rule, args.dry_run)
    else:
        from ..purge import purge
        from ..sitestore import SiteStore

        done = purge(SiteStore(s.store or DEFAULT_STORE), rule, args.dry_run)
        report = {"versions": done.versions, "objects": len(done.objects), "bytes": done.bytes}
    verb = "would free" if args.dry_run else "freed"
    print(f"{verb} {human_size(report['bytes'])} ({report['objects']} objects) of {report['versions']} old versions")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..extras import require

    require("xarray", "science", "the demo")
    from ..demo import run_demo

    return run_demo(args)


def add_commands(sub: Any) -> None:
    """Add this module's commands to the subparsers ``sub``."""
    p = sub.add_parser("init", help="create a site store and its signing key")
    p.add_argument("site", help="the site's name, e.g. RV-Meteor")
    p.add_argument("--store", help=f"folder (default {DEFAULT_STORE}), or s3://bucket/prefix for objects "
                   "and the site log on S3 (the key stays in --local)")
    p.add_argument("--local", help=f"with an s3:// --store: the local folder for key, config and state "
                   f"(default {DEFAULT_STORE})")
    p.add_argument("--objects", help="keep objects on an fsspec URL (e.g. s3://bucket/prefix)")
    p.add_argument("--url", action="append", default=[], help="URL this site's server is reached at")
    p.set_defaults(func=cmd_init)

    from ..server.run import add_arguments

    p = sub.add_parser("serve", help="run a site server")
    add_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("status", help="a site server's links, queues and traffic")
    p.add_argument("--json", action="store_true", help="the whole status as JSON")
    add_target(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("token", help="manage access tokens of a site server")
    tsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it once")
    t.add_argument("--name", default="user", help="who or what holds it (default user)")
    t.add_argument("--scope", choices=["write", "read"], default="write",
                   help="write (publish, remove, prefetch; reads too) or read (default write)")
    add_store(t, "the server\'s site store")
    t.set_defaults(func=cmd_token)
    t = tsub.add_parser("list", help="list the tokens: id, scope, created, name (never the token)")
    add_store(t, "the server\'s site store")
    t.set_defaults(func=cmd_token)
    t = tsub.add_parser("revoke", help="revoke a token: the server refuses it at once")
    t.add_argument("which", metavar="ID_OR_NAME", help="its id from 'token list', or its name if unique")
    add_store(t, "the server\'s site store")
    t.set_defaults(func=cmd_token)

    p = sub.add_parser("keyring", help="show the trusted keys; --import a campaign keyring")
    p.add_argument("--import", dest="file", metavar="FILE", help="merge this keyring file into the store's")
    add_store(p)
    p.set_defaults(func=cmd_keyring)

    p = sub.add_parser("join", help="start other sites' logs from their newest checkpoint at a server")
    p.add_argument("server", help="site server URL holding the logs")
    p.add_argument("--site", action="append", required=True, help="site whose log to join (repeatable)")
    add_store(p)
    p.add_argument("--token", help="read token, if the server needs one")
    p.set_defaults(func=cmd_join)

    p = sub.add_parser("fsck", help="re-hash objects, verify logs, list missing objects")
    add_store(p)
    p.set_defaults(func=cmd_fsck)

    p = sub.add_parser("purge", help="delete the data of old versions a retention rule lets go of")
    p.add_argument("--keep", type=int, default=0, help="keep this many replaced versions of each entry")
    p.add_argument("--keep-days", type=float, help="keep versions replaced less than this many days ago")
    p.add_argument("--dry-run", action="store_true", help="say what would be freed, delete nothing")
    add_target(p)
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("demo", help="a small campaign on this machine: hub, ships, observatory")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--dir", default=DEFAULT_STORE, help=f"where the sites keep their stores (default {DEFAULT_STORE})")
    p.add_argument("--port", type=int, default=8047, help="port of the hub (others follow; 0: any free ports)")
    p.add_argument("--speed", type=float, default=1.0, help="publish this many times faster")
    p.set_defaults(func=cmd_demo)
