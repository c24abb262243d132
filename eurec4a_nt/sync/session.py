"""One live connection between two sites, the same on both ends.

Over one WebSocket each side:

- sends the commits the other lacks (all sites: a relay forwards what it cannot forge);
- pushes entries the other subscribes to as soon as it commits or receives them
  (everything under a new entry at once; only the root of a new version, so the
  receiver can ask for the changed blocks as deltas against ones it holds);
- answers wants (lazy reads, completion of partly held entries), relaying them to
  the site that holds the data when it lacks them itself;
- receives objects piece by piece, verifies and stores them.

Sends are ordered by priority (reads first, then the link's topic order, small and
new before large and old), piece by piece, so a quicklook overtakes a raw block.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from ..entries import Entry, check_topics
from ..errors import BadInput, Corrupt, NTError, ObjectMissing, Pending
from ..ids import ObjectId
from ..log import Commit
from ..manifests import children, zarr_metadata
from ..tasks import spawn
from . import plan
from .config import DEFAULT_ESSENTIAL, DEFAULT_PRIORITY, LinkConfig
from .wire import DELTA, Piece, decode, encode, message, pieces

if TYPE_CHECKING:
    from .links import Links

log = logging.getLogger(__name__)

WebSocket = web.WebSocketResponse | ClientWebSocketResponse
Follow = str | tuple[int, int] | None
_COMMIT_BATCH = 256 << 10
_WANT_BATCH = 2000
READ, ESSENTIAL, BULK = 0, 1, 2


def follow_ups(data: bytes, follow: Follow) -> list[tuple[ObjectId, Follow]]:
    """What to send after an object (its bytes ``data``) as ``(id, follow)``:
    everything under it ("all"), the blocks of a byte span of a record, the metadata
    documents of a zarr manifest ("metadata"), or nothing."""
    if follow == "metadata":
        return [(oid, None) for oid in zarr_metadata(data)]
    if follow is None:
        return []
    span = follow if isinstance(follow, tuple) else None
    return [(oid, "all" if deep else None) for oid, deep in children(data, span)]


def read_follow(follow: Follow, cls: int) -> Follow:
    """A reader's want follows the object as asked, else brings a zarr manifest's
    metadata along (what a reader opening the dataset needs next)."""
    return follow or ("metadata" if cls == READ else None)


@dataclass(order=True)
class SendItem:
    """An object queued for sending."""

    key: tuple[Any, ...]
    oid: ObjectId = field(compare=False)
    cls: int = field(compare=False)
    base: ObjectId | None = field(default=None, compare=False)
    #: What to send after this object (see :func:`follow_ups`).
    follow: Follow = field(default=None, compare=False)
    queue: list[Piece] | None = field(default=None, compare=False)
    #: What ``follow`` names, as ``(id, follow)``: found when the object is read to be sent.
    after: list[tuple[ObjectId, Follow]] = field(default_factory=list, compare=False)


@dataclass
class Selection:
    topics: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def selects(self, entry: Entry) -> bool:
        return entry.matches(self.topics, self.sites, self.names)

    def to_json(self) -> dict[str, list[str]]:
        return {"topics": list(self.topics), "sites": list(self.sites), "names": list(self.names)}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Selection:
        return cls(check_topics(body.get("topics") or []), tuple(body.get("sites") or []),
                   tuple(str(n) for n in body.get("names") or []))


@dataclass
class Subscription:
    """What a site wants from its peer: entries any of the selections selects."""

    selections: list[Selection] = field(default_factory=list)

    def selects(self, entry: Entry) -> bool:
        return any(s.selects(entry) for s in self.selections)

    def to_json(self) -> dict[str, Any]:
        return {"any": [s.to_json() for s in self.selections]}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Subscription:
        return cls([Selection.from_json(s) for s in body.get("any") or [] if isinstance(s, dict)])


def parse_partials(body: dict[str, Any]) -> dict[ObjectId, tuple[int, ObjectId | None, int]]:
    """``{id: [encoding, base or null, offset]}`` -> parsed resume points."""
    return {ObjectId.parse(k): (int(v[0]), ObjectId.parse(v[1]) if v[1] else None, int(v[2]))
            for k, v in body.items()}


class Session:
    """A connected peer; :meth:`run` returns when the connection ends.

    ``options`` are what the peer said in the handshake: how far it is in every site
    log (``heads``), what it subscribes to, the resume points of objects it holds in
    part and, from a dialling peer, how it wants to be served (topic priority,
    essential topics, rate cap, whether bulk may flow, topics it pushes). With them
    the session sends from its first moment: no round trip for a hello.
    """

    def __init__(self, links: Links, ws: WebSocket, peer: str, link: LinkConfig | None,
                 options: dict[str, Any]) -> None:
        self.links = links
        self.node = links.node
        self.ws = ws
        self.peer = peer
        self.link = link
        self.name = link.name if link else f"{peer} (dialled in)"
        self.peer_heads = {str(k): int(v) for k, v in (options.get("heads") or {}).items()}
        self.peer_wants = Subscription.from_json(options.get("subscribe") or {})
        self.ready = "heads" in options  # until the peer says what it has, send no commits
        self.peer_push: tuple[str, ...] = ()
        self.peer_partials = parse_partials(options.get("partials") or {})
        if link is not None:
            self.priority, self.essential, self.rate = link.priority, link.essential, link.up_rate
            self.bulk = links.bulk_allowed_for(link)
        else:
            self.priority = tuple(options.get("priority") or DEFAULT_PRIORITY)
            self.essential = tuple(options.get("essential") or DEFAULT_ESSENTIAL)
            self.rate = int(options["rate"]) if options.get("rate") else None
            self.bulk = bool(options.get("bulk", True))
            self.peer_push = check_topics(options.get("push") or [])
        self.compress = link.compress if link else True
        self.control: asyncio.Queue[str] = asyncio.Queue()
        self.outbox: list[SendItem] = []
        self.queued: dict[ObjectId, SendItem] = {}
        self.sent: set[ObjectId] = set()
        self.deep_incoming: set[ObjectId] = set()
        self.wake = asyncio.Event()
        self.counter = itertools.count()
        self.sent_bytes = self.received_bytes = 0
        self.connected = time.time()
        self.last_contact = time.time()
        self._bucket = 0.0
        self._bucket_time = time.monotonic()
        self.requeue(links.adopt_backlog(peer))

    # -- life cycle --------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        writer.add_done_callback(self._writer_done)
        try:
            if self.ready:
                await self.links.session_ready(self, self.send_commits())
            async for msg in self.ws:
                self.last_contact = time.time()
                if msg.type == WSMsgType.TEXT:
                    self._count(received=len(msg.data))
                    await self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._count(received=len(msg.data))
                    await self._on_piece(Piece.unpack(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self.links.flush_traffic(self)
            self.links.keep_backlog(self, list(self.queued.values()))

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, (ConnectionError, RuntimeError)):
                log.error("%s: sending failed: %r", self.name, exc)
            spawn(self.ws.close())

    def say(self, kind: str, **body: Any) -> None:
        """Queue a control message (sent before any further object piece)."""
        self.control.put_nowait(message(kind, **body))
        self.wake.set()

    def _count(self, sent: int = 0, received: int = 0) -> None:
        self.sent_bytes += sent
        self.received_bytes += received
        self.links.count_traffic(self, sent, received)

    # -- sending -----------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            while not self.control.empty():
                text = self.control.get_nowait()
                await self.ws.send_str(text)
                self._count(sent=len(text))
            item = self._next()
            if item is None:
                self.wake.clear()
                if self.control.empty():
                    await self.wake.wait()
                continue
            if item.queue is None and not await self._encode(item):
                continue
            assert item.queue is not None
            piece = item.queue.pop(0)
            data = piece.pack()
            await self._throttle(len(data))
            await self.ws.send_bytes(data)
            self._count(sent=len(data))
            if item.queue:
                heapq.heappush(self.outbox, item)
            else:
                self.queued.pop(item.oid, None)
                self.sent.add(item.oid)
                for oid, follow in item.after:
                    if self.node.store.objects.has(oid):
                        self.send([oid], item.cls, item.key[1:-1], follow=follow)

    def _next(self) -> SendItem | None:
        held = []
        found = None
        while self.outbox:
            item = heapq.heappop(self.outbox)
            if item.oid not in self.queued:
                continue  # cancelled
            if item.cls == BULK and not self.bulk:
                held.append(item)
                continue
            found = item
            break
        for item in held:
            heapq.heappush(self.outbox, item)
        return found

    async def _encode(self, item: SendItem) -> bool:
        store = self.node.store.objects
        try:
            data = await asyncio.to_thread(store.get, item.oid)
        except ObjectMissing:
            self.queued.pop(item.oid, None)
            self.say("lack", ids=[item.oid], held_at="")
            return False
        item.after = follow_ups(data, item.follow)
        resume = self.peer_partials.pop(item.oid, None)
        base_id = resume[1] if resume else item.base
        base = None
        if base_id and store.has(base_id):
            base = await asyncio.to_thread(store.get, base_id)
        encoding, payload = await asyncio.to_thread(encode, data, base, self.compress)
        start = 0
        if resume and resume[0] == encoding and resume[2] < len(payload):
            start = resume[2]
        item.queue = pieces(item.oid, encoding, base_id if encoding == DELTA else None, payload, start)
        return True

    async def _throttle(self, size: int) -> None:
        """Keep to the link's bandwidth cap (a token bucket one second deep)."""
        if not self.rate:
            return
        now = time.monotonic()
        self._bucket = min(self._bucket + (now - self._bucket_time) * self.rate, float(self.rate))
        self._bucket_time = now
        self._bucket -= size
        if self._bucket < 0:
            await asyncio.sleep(-self._bucket / self.rate)

    def send(self, oids: list[ObjectId], cls: int, rank: tuple[Any, ...] = (),
             bases: dict[ObjectId, ObjectId] | None = None, follow: Follow = None) -> None:
        """Queue objects for the peer (ids already queued or sent here are skipped;
        a more urgent request raises the priority of a queued one)."""
        for oid in oids:
            if oid in self.sent:
                continue
            current = self.queued.get(oid)
            if current is not None and current.cls <= cls:
                continue
            item = SendItem((cls, *rank, next(self.counter)), oid, cls, (bases or {}).get(oid), follow)
            self.queued[oid] = item
            heapq.heappush(self.outbox, item)
        self.wake.set()

    def requeue(self, items: list[SendItem]) -> None:
        """Queue what an earlier session to the same peer had still to send."""
        for item in items:
            self.send([item.oid], item.cls, item.key[1:-1], {item.oid: item.base} if item.base else None,
                      item.follow)

    # -- pushing entries -------------------------------------------------------------

    def wants_entry(self, entry: Entry) -> bool:
        """Whether the peer subscribed to an entry (it never needs its own)."""
        if entry.site == self.peer:
            return False
        pushed = self.link is not None and bool(self.link.push) and entry.matches(
            self.link.push, (), self.link.names)
        return pushed or self.peer_wants.selects(entry)

    def rank(self, entry: Entry) -> tuple[int, tuple[Any, ...]]:
        cls = ESSENTIAL if set(entry.topics) & set(self.essential) else BULK
        return cls, plan.priority_key(entry, self.priority)

    def push(self, entry: Entry, previous: Entry | None) -> None:
        """Send an entry the peer subscribes to: all of it if new, else its root first."""
        cls, key = self.rank(entry)
        if previous is None:
            self.say("pushing", roots=[entry.root])
        self.send([entry.root], cls, key, follow="all" if previous is None else None)

    def send_commits(self) -> list[Commit]:
        """Send every commit the peer lacks, oldest first, in batches; return them.
        Nothing before the peer has said what it has."""
        if not self.ready:
            return []
        batch: list[str] = []
        sent: list[Commit] = []
        size = 0
        for site, seq in self.node.store.heads().items():
            known = self.peer_heads.get(site, 0)
            if seq <= known or site == self.peer:
                continue
            for commit in self.node.store.log(site).commits_after(known):
                batch.append(commit.raw.decode())
                sent.append(commit)
                size += len(commit.raw)
                if size > _COMMIT_BATCH:
                    self.say("commits", raws=batch)
                    batch, size = [], 0
            self.peer_heads[site] = seq
        if batch:
            self.say("commits", raws=batch)
        return sent

    # -- receiving ---------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        try:
            body = json.loads(text)
            handler = getattr(self, f"_on_{body['type']}")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: ignoring a malformed message", self.name)
            return
        try:
            await handler(body)
        except NTError as exc:
            log.warning("%s: %s", self.name, exc)
        except Exception:  # a bug must not take the link down
            log.exception("%s: error handling %s", self.name, body.get("type"))

    async def _on_commits(self, body: dict[str, Any]) -> None:
        raws = [str(r).encode() for r in body.get("raws") or []]
        for raw in raws:  # the peer has them: never echo them back
            try:
                head = json.loads(raw)
                self.peer_heads[head["site"]] = max(self.peer_heads.get(head["site"], 0), int(head["seq"]))
            except (ValueError, KeyError, TypeError):
                continue
        await self.links.received_commits(self, raws)

    async def _on_heads(self, body: dict[str, Any]) -> None:
        for site, seq in (body.get("heads") or {}).items():
            self.peer_heads[str(site)] = max(self.peer_heads.get(str(site), 0), int(seq))

    async def _on_subscribe(self, body: dict[str, Any]) -> None:
        self.peer_wants = Subscription.from_json(body)

    async def _on_limits(self, body: dict[str, Any]) -> None:
        self.bulk = bool(body.get("bulk", True))
        self.wake.set()

    async def _on_pushing(self, body: dict[str, Any]) -> None:
        self.deep_incoming.update(ObjectId.parse(r) for r in body.get("roots") or [])

    async def _on_want(self, body: dict[str, Any]) -> None:
        ids = [ObjectId.parse(i) for i in body.get("ids") or []]
        follow: dict[ObjectId, Follow] = {ObjectId.parse(i): "all" for i in body.get("deep") or []}
        spans = {ObjectId.parse(k): (int(v[0]), int(v[1])) for k, v in (body.get("spans") or {}).items()}
        follow.update(spans)
        bases = {ObjectId.parse(k): ObjectId.parse(v) for k, v in (body.get("bases") or {}).items()}
        self.peer_partials.update(parse_partials(body.get("resume") or {}))
        cls = {"read": READ, "essential": ESSENTIAL}.get(str(body.get("class")), BULK)
        if cls == READ:  # a reader lacks them: the peer lost or evicted what it had
            self.sent.difference_update(ids)
        store = self.node.store.objects
        here = [oid for oid in ids if store.has(oid)]
        for oid in here:
            self.send([oid], cls, (), bases, read_follow(follow.get(oid), cls))
        absent = [oid for oid in ids if oid not in set(here)]
        if absent:
            spawn(self._relay(absent, follow, spans, bases, cls, int(body.get("hops", 1)),
                                            body.get("site")))

    async def _relay(self, oids: list[ObjectId], follow: dict[ObjectId, Follow],
                     spans: dict[ObjectId, tuple[int, int]], bases: dict[ObjectId, ObjectId],
                     cls: int, hops: int, site: str | None) -> None:
        """Fetch what the peer wants from the site holding it, then send it on."""
        try:
            if hops <= 1:
                raise ObjectMissing("not held here")
            await self.node.ensure(oids, site, hops - 1, spans)
        except Pending as exc:
            self.node.index.want(oids, site or "", self.peer, spans)
            self.say("lack", ids=oids, held_at=exc.held_at, pending=True)
            return
        except NTError:
            self.say("lack", ids=oids, held_at="")
            return
        for oid in oids:
            self.send([oid], cls, (), bases, follow.get(oid))

    async def _on_lack(self, body: dict[str, Any]) -> None:
        ids = [ObjectId.parse(i) for i in body.get("ids") or []]
        self.links.reads.lacking(self, ids, str(body.get("held_at") or ""), bool(body.get("pending")))

    async def _on_have(self, body: dict[str, Any]) -> None:
        for oid in (ObjectId.parse(i) for i in body.get("ids") or []):
            self.queued.pop(oid, None)
            self.sent.add(oid)

    async def _on_piece(self, piece: Piece) -> None:
        store = self.node.store.objects
        if store.has(piece.oid):
            if piece.offset == 0:
                self.say("have", ids=[piece.oid])
            return
        payload = self.links.partials.assemble(piece)
        if payload is None:
            return
        base = None
        if piece.base is not None and store.has(piece.base):
            base = await asyncio.to_thread(store.get, piece.base)
        try:
            data = await asyncio.to_thread(decode, piece.encoding, payload, base, piece.oid)
            await self.node.put_objects([(piece.oid, data)])
        except (Corrupt, BadInput) as exc:
            log.warning("%s: dropped %s: %s", self.name, piece.oid.short, exc)
            self.links.reads.failed(piece.oid, exc)
            return
        await self.links.arrived(self, piece.oid)

    # -- asking ------------------------------------------------------------------------

    def want(self, wants: plan.Wants, cls: int, site: str | None = None, hops: int = 1) -> None:
        """Ask the peer for objects (in batches), resuming partial transfers."""
        every = wants.shallow + wants.deep
        resume = {oid: list(spec) for oid, spec in self.links.partials.specs(every).items()}
        name = {READ: "read", ESSENTIAL: "essential"}.get(cls, "bulk")
        deep = set(wants.deep)
        for i in range(0, len(every), _WANT_BATCH):
            part = every[i:i + _WANT_BATCH]
            self.say("want", ids=part, deep=[o for o in part if o in deep], site=site, hops=hops,
                     bases={k: v for k, v in wants.bases.items() if k in part},
                     spans={k: list(v) for k, v in wants.spans.items() if k in part},
                     resume={k: v for k, v in resume.items() if k in part}, **{"class": name})
        self.deep_incoming.update(wants.deep)

    def status(self) -> dict[str, Any]:
        """State for pages and ``eurec4a-nt status``: the queue in the order it is sent."""
        first = heapq.nsmallest(10, (i for i in self.outbox if self.queued.get(i.oid) is i))
        waiting = []
        for item in first:
            entry = self.links.entry_of_root(item.oid)
            waiting.append({"what": entry.path if entry else f"object {item.oid.short}",
                            "class": ("read", "essential", "bulk")[item.cls],
                            "held back": item.cls == BULK and not self.bulk})
        return {
            "peer": self.peer, "link": self.name, "dialled": self.link is not None,
            "connected_since": self.connected, "last_contact": self.last_contact,
            "queue": len(self.queued), "waiting": waiting, "bulk": self.bulk,
            "sent": self.sent_bytes, "received": self.received_bytes,
        }
