"""A site's links: dialling configured peers (with back-off), accepting peers that dial
in (``GET /link``), and deciding what each session pushes and asks for.

Peers prove who they are with their site key: the dialler signs a fresh nonce and
the listener answers with its own signature, both checked against the keyring, so
no tokens are exchanged between sites.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import socket
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp import web

from ..entries import Entry, check_site, check_topics
from ..errors import Forbidden, Unauthorized
from ..ids import ObjectId
from ..keyring import verify_signature
from ..log import Commit
from ..manifests import held_below
from ..node import Node
from ..tasks import spawn
from . import plan
from .config import LinkConfig
from .partials import Partials
from .reads import Reads
from .session import BULK, ESSENTIAL, READ, Selection, SendItem, Session, Subscription

log = logging.getLogger(__name__)

HEARTBEAT = 15.0
_MAX_SKEW = 600
_NOTSENT_LOWAT = 128 << 10

routes = web.RouteTableDef()


def _proof_text(kind: str, site: str, nonce: str, when: str = "") -> bytes:
    return f"eurec4a-nt link {kind}\n{site}\n{nonce}\n{when}".encode()


def retry_delay(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (1, 2, ...) after a link failed.

    Satellite drops are often a few seconds long and every second of a short uptime
    counts, so for the first 3 s a try every 0.2 s (one SYN each); then the delay
    doubles up to a minute. Jitter keeps sites from retrying in step.
    """
    base = 0.2 if attempt <= 15 else min(0.2 * 2 ** (attempt - 15), 60.0)
    return base * random.uniform(0.8, 1.2)


def _tune(sock: socket.socket | None) -> None:
    """Keep little unsent data in the kernel so urgent objects are not stuck behind bulk."""
    if sock is not None and hasattr(socket, "TCP_NOTSENT_LOWAT"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _NOTSENT_LOWAT)
        except OSError:
            pass


def _options(headers: Any) -> dict[str, Any]:
    """The peer's handshake options (``X-NT-Options``, JSON); {} if absent or malformed."""
    try:
        body = json.loads(headers.get("X-NT-Options", "{}"))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Links:
    """Every link of one site, and the sessions currently connected."""

    def __init__(self, node: Node, configs: Iterable[LinkConfig]) -> None:
        self.node = node
        self.configs = list(configs)
        self.sessions: dict[str, Session] = {}
        self.dialed: dict[str, str] = {}
        self.last_error: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.partials = Partials()
        self.reads = Reads(node, self.route)
        self._pending_push: dict[ObjectId, list[tuple[Session, Entry]]] = {}
        self._push_blockers: dict[ObjectId, set[ObjectId]] = {}
        self._roots: dict[ObjectId, Entry] | None = None
        self._complete: set[ObjectId] = set()
        self._traffic: dict[str, list[int]] = {}
        self._backlog: dict[str, list[SendItem]] = {}
        node.fetcher = self.reads
        node.listen("commits", self._on_commits)
        node.listen("objects", self._on_objects)
        node.listen("rules", self._on_rules)

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._dial(c)) for c in self.configs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for session in list(self.sessions.values()):
            await session.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.reads.stop()

    def _register(self, session: Session) -> None:
        old = self.sessions.get(session.peer)
        if old is not None and old is not session:
            spawn(old.ws.close())
        self.sessions[session.peer] = session

    def _unregister(self, session: Session) -> None:
        if self.sessions.get(session.peer) is session:
            del self.sessions[session.peer]
        self.reads.session_ended(session)

    # -- dialling ----------------------------------------------------------------------

    async def _dial(self, config: LinkConfig) -> None:
        """Keep one session to ``config.url`` up, backing off (with jitter) while it fails."""
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    if await self._connect(http, config):
                        attempt = 0
                    self.last_error.pop(config.name, None)
                except (TimeoutError, aiohttp.ClientError, OSError, Forbidden) as exc:
                    self.last_error[config.name] = f"{type(exc).__name__}: {exc}"
                    log.info("link %s: %s", config.name, self.last_error[config.name])
                attempt += 1
                await asyncio.sleep(retry_delay(attempt))

    async def _connect(self, http: aiohttp.ClientSession, config: LinkConfig) -> bool:
        """One session over the link; True once it was established."""
        nonce, when = secrets.token_hex(16), str(int(time.time()))
        key = self.node.store.key
        options = {"priority": list(config.priority), "essential": list(config.essential),
                   "rate": config.down_rate, "bulk": self.bulk_allowed_for(config),
                   "push": list(config.push), **self._state(self.subscription(config, "", ()))}
        headers = {"X-NT-Site": self.node.site, "X-NT-Nonce": nonce, "X-NT-Time": when,
                   "X-NT-Signature": key.sign(_proof_text("dial", self.node.site, nonce, when)),
                   "X-NT-Options": json.dumps(options, separators=(",", ":"))}
        async with http.ws_connect(config.url + "/link", headers=headers, heartbeat=HEARTBEAT,
                                   max_msg_size=0, compress=0) as ws:
            peer = ws._response.headers.get("X-NT-Site", "")
            self._check_proof(peer, ws._response.headers.get("X-NT-Proof", ""),
                              _proof_text("reply", peer, nonce))
            conn = ws._response.connection
            _tune(conn.transport.get_extra_info("socket") if conn and conn.transport else None)
            self.dialed[config.name] = peer
            session = Session(self, ws, peer, config, _options(ws._response.headers))
            self._register(session)
            try:
                await session.run()
            finally:
                self._unregister(session)
        return True

    def _check_proof(self, site: str, signature: str, text: bytes) -> None:
        known = self.node.store.keyring.sites.get(site)
        if known is None:
            raise Forbidden(f"site {site or '?'} is not in the keyring")
        if not verify_signature(known.public_key, text, signature):
            raise Forbidden(f"site {site} did not prove its identity")

    # -- accepting ---------------------------------------------------------------------

    async def accept(self, request: web.Request) -> web.StreamResponse:
        """Take a peer's dialled connection after checking its signed nonce."""
        site = check_site(request.headers.get("X-NT-Site", ""))
        nonce = request.headers.get("X-NT-Nonce", "")
        when = request.headers.get("X-NT-Time", "0")
        if not nonce or not when.isdigit():
            raise Unauthorized("a link must send X-NT-Nonce, X-NT-Time and X-NT-Signature")
        if abs(time.time() - int(when)) > _MAX_SKEW:
            raise Forbidden("link proof is too old or from the future: check the clocks")
        if site == self.node.site:
            raise Forbidden("a site cannot link to itself")
        self._check_proof(site, request.headers.get("X-NT-Signature", ""),
                          _proof_text("dial", site, nonce, when))
        proof = self.node.store.key.sign(_proof_text("reply", self.node.site, nonce))
        options = _options(request.headers)
        mine = self._state(self.subscription(None, site, check_topics(options.get("push") or [])))
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=0, compress=False)
        ws.headers.update({"X-NT-Site": self.node.site, "X-NT-Proof": proof,
                           "X-NT-Options": json.dumps(mine, separators=(",", ":"))})
        await ws.prepare(request)
        _tune(request.transport.get_extra_info("socket") if request.transport else None)
        session = Session(self, ws, site, None, options)
        self._register(session)
        try:
            await session.run()
        finally:
            self._unregister(session)
        return ws

    # -- what this site wants over a session ------------------------------------------

    def subscription(self, link: LinkConfig | None, peer: str, peer_push: tuple[str, ...]) -> Subscription:
        """What this site wants held here from a peer: its prefetch rules, the link's
        prefetch topics (dialling side), and what a dialling peer said it pushes."""
        out = [Selection(r.topics, r.sites, r.names) for r in self.node.rules()]
        if link is not None and link.prefetch:
            out.append(Selection(link.prefetch, (), link.names))
        if link is None and peer_push:
            out.append(Selection(peer_push, (peer,)))
        return Subscription(out)

    def _state(self, subscription: Subscription) -> dict[str, Any]:
        """What a handshake tells the peer: heads, subscription, resume points."""
        return {"heads": self.node.store.heads(), "subscribe": subscription.to_json(),
                "partials": self.partials.header()}

    async def session_ready(self, session: Session, sent: list[Commit]) -> None:
        """When a session starts: push the entries of the commits just sent that the peer
        subscribes to, ask for what this site lacks of entries it already knew, and
        send wants recorded while the peer was away."""
        self._push_entries(session, sent)
        self._complete_from(session, self._entries())
        pending = [w for w in self.node.index.wants()
                   if w.site in (session.peer, "") or session.link is not None]
        if pending:
            spans = {w.id: (w.span[0], w.span[1]) for w in pending if w.span}
            session.want(plan.Wants(shallow=[w.id for w in pending], spans=spans), READ, hops=2)

    def _push_entries(self, session: Session, commits: list[Commit]) -> None:
        for commit in commits:
            for change in commit.changes:
                if change.entry is not None:
                    entry = change.entry.with_site(commit.site)
                    if session.wants_entry(entry):
                        self._push_when_complete(session, entry)

    async def received_commits(self, session: Session, raws: list[bytes]) -> None:
        """Verify and keep commits from a peer, then tell it how far this site got."""
        await self.node.receive(raws)
        session.say("heads", heads=self.node.store.heads())

    def _entries(self) -> list[Entry]:
        return self.node.entries()

    def _complete_from(self, session: Session, entries: Iterable[Entry]) -> None:
        """Ask the peer for every object this site lacks of the entries it subscribes to."""
        subscription = self.subscription(session.link, session.peer, session.peer_push)
        store = self.node.store
        by_class: dict[int, plan.Wants] = {}
        for entry in sorted(entries, key=lambda e: plan.priority_key(e, session.priority)):
            if entry.site == self.node.site or entry.root in self._complete:
                continue
            if entry.root in session.deep_incoming or not subscription.selects(entry):
                continue
            previous = store.state(entry.site).previous.get(entry.name)
            wants = plan.missing(entry, previous, store.objects)
            if not wants:
                self._complete.add(entry.root)
                continue
            cls = ESSENTIAL if set(entry.topics) & set(session.essential) else BULK
            by_class.setdefault(cls, plan.Wants()).extend(wants)
        for cls, wants in sorted(by_class.items()):
            session.want(wants, cls)

    # -- events from the node ----------------------------------------------------------

    def _on_commits(self, commits: list[Commit]) -> None:
        self._roots = None
        for session in list(self.sessions.values()):
            self._push_entries(session, session.send_commits())

    def _push_when_complete(self, session: Session, entry: Entry) -> None:
        """Push an entry now if this site holds all of it, else as soon as it does
        (store-and-forward: a relay passes on what it has received whole)."""
        if entry.root not in self._pending_push and self._missing_for_push(entry):
            self._pending_push[entry.root] = []
        if entry.root in self._pending_push:
            self._pending_push[entry.root].append((session, entry))
        else:
            session.push(entry, self.node.store.state(entry.site).previous.get(entry.name))

    def _missing_for_push(self, entry: Entry) -> bool:
        """Index what an entry still lacks here; False if nothing."""
        wants = plan.missing(entry, None, self.node.store.objects)
        for oid in wants.shallow + wants.deep:
            self._push_blockers.setdefault(oid, set()).add(entry.root)
        return bool(wants)

    def _on_objects(self, oids: list[ObjectId]) -> None:
        unblocked: set[ObjectId] = set()
        for oid in oids:
            self.reads.stored(oid)
            for requester in self.node.index.wanted_by(oid):
                if requester in self.sessions:
                    self.sessions[requester].send([oid], READ)
            unblocked |= self._push_blockers.pop(oid, set())
        for root in unblocked:
            waiting = self._pending_push.get(root)
            if not waiting or self._missing_for_push(waiting[0][1]):
                continue
            del self._pending_push[root]
            for session, entry in waiting:
                if self.sessions.get(session.peer) is session:
                    session.push(entry, self.node.store.state(entry.site).previous.get(entry.name))

    def _on_rules(self, rules: Any) -> None:
        self._complete.clear()
        for session in list(self.sessions.values()):
            session.say("subscribe", **self.subscription(session.link, session.peer, session.peer_push).to_json())
            self._complete_from(session, self._entries())

    # -- objects arriving --------------------------------------------------------------

    def keep_backlog(self, session: Session, items: list[SendItem]) -> None:
        """Keep what was still to send when a session ended: for the next session to
        the peer or, if a newer one already runs, for that one (never for a later one,
        which would send again what the newer session delivered meanwhile)."""
        for item in items:
            item.queue = None
        current = self.sessions.get(session.peer)
        if current is not None and current is not session:
            current.requeue(items)
        else:
            self._backlog[session.peer] = items

    def adopt_backlog(self, peer: str) -> list[SendItem]:
        """What a new session to ``peer`` sends first: the previous session's queue."""
        return self._backlog.pop(peer, [])

    async def arrived(self, session: Session, oid: ObjectId) -> None:
        """After an object from ``session`` is stored: let waiting reads know what comes
        with it, and ask for the rest of an entry whose root just arrived; if the
        peer is sending all of it anyway, tell it what is already here."""
        await self.reads.arrived(session, oid)
        if oid in session.deep_incoming:
            session.deep_incoming.discard(oid)
            held = await asyncio.to_thread(held_below, oid, self.node.store.objects)
            if held:
                session.say("have", ids=held)
            return
        entry = self.entry_of_root(oid)
        if entry is not None:
            self._complete_from(session, [entry])

    def entry_of_root(self, root: ObjectId) -> Entry | None:
        if self._roots is None:
            self._roots = {e.root: e for e in self._entries()}
        return self._roots.get(root)

    def route(self, site: str | None) -> Session | None:
        """The session a read of ``site``'s data goes over: the site's own, else a
        dialled link that allows lazy reads."""
        if site and site in self.sessions:
            return self.sessions[site]
        for session in self.sessions.values():
            if session.link is not None and session.link.lazy:
                return session
        return None

    # -- traffic and budgets -----------------------------------------------------------

    def count_traffic(self, session: Session, sent: int, received: int) -> None:
        counts = self._traffic.setdefault(session.name, [0, 0])
        counts[0] += sent
        counts[1] += received
        if counts[0] + counts[1] >= 256 << 10:
            self.flush_traffic(session)

    def flush_traffic(self, session: Session) -> None:
        sent, received = self._traffic.pop(session.name, [0, 0])
        if sent or received:
            self.node.index.count_traffic(session.name, sent, received)
        if session.link is not None and session.link.budget:
            allowed = self.bulk_allowed_for(session.link)
            if allowed != session.bulk:
                session.bulk = allowed
                session.say("limits", bulk=allowed)

    def bulk_allowed_for(self, link: LinkConfig) -> bool:
        """Whether the link's daily budget leaves room for bulk transfers today."""
        if not link.budget:
            return True
        sent, received = self.node.index.traffic(link.name)
        pending = sum(self._traffic.get(link.name, [0, 0]))
        return sent + received + pending < link.budget

    def status(self) -> list[dict[str, Any]]:
        """Per link and connected peer: state, last contact, queue and traffic today."""
        out = []
        for config in self.configs:
            peer = self.dialed.get(config.name, "")
            session = self.sessions.get(peer)
            sent, received = self.node.index.traffic(config.name)
            out.append({
                "link": config.name, "url": config.url, "peer": peer, "dialled": True,
                "connected": session is not None and session.link is config,
                "error": self.last_error.get(config.name, ""),
                "push": list(config.push), "prefetch": list(config.prefetch), "lazy": config.lazy,
                "budget": config.budget, "sent_today": sent, "received_today": received,
                **({k: v for k, v in session.status().items() if k not in ("link", "peer", "dialled")}
                   if session is not None and session.link is config else {}),
            })
        for session in self.sessions.values():
            if session.link is None:
                sent, received = self.node.index.traffic(session.name)
                out.append({**session.status(), "connected": True, "sent_today": sent,
                            "received_today": received})
        return out


LINKS = web.AppKey("links", Links)


@routes.get("/link")
async def link(request: web.Request) -> web.StreamResponse:
    """A peer dialling in (WebSocket)."""
    return await request.app[LINKS].accept(request)
