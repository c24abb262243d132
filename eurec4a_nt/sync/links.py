"""A site's links: accepting peers that dial in (``GET /link``, authenticated by
:mod:`.handshake`), running the sessions of both these and the links dialled
(:class:`~.dialling.Dialler`), routing reads to the peer that can bring the data, and
the links' status. What flows over the sessions is the :class:`~.exchange.Exchange`'s
business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, web

from ..entries import check_topics
from ..errors import NTError
from ..node import Node
from ..tasks import spawn
from ..tls import client_context
from . import handshake
from .clocks import Clocks
from .config import LinkConfig
from .core import Peer
from .dialling import Dialler, describe
from .exchange import Exchange
from .partials import Partials
from .policy import route
from .reads import Reads
from .sender import WebSocket
from .session import Session
from .tickets import Tickets

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

#: Seconds a stopping site gives its peers to answer the close of their links; those
#: that do not (a stalled link, a dialler that never sends its hello) are cut off.
CLOSE_GRACE = 2.0


class Links:
    """Every link of one site, and the sessions currently connected."""

    def __init__(self, node: Node, configs: Iterable[LinkConfig], ca_file: Path | None = None) -> None:
        self.node = node
        self.configs = list(configs)
        #: Per link name (a dialled link) or peer (one that dialled in): when it went
        #: down, while it is down; peers stay listed after their session ended.
        self.offline_since: dict[str, float] = {}
        #: Per site (or address) refused at a handshake here: when and why.
        self.refused: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: Connections dialled in, from their upgrade until they end (proving their
        #: site or in session): what :meth:`stop` closes beside the links dialled.
        self._accepted: set[web.WebSocketResponse] = set()
        self.partials = Partials()
        self.reads = Reads(node, self.route)
        self.exchange = Exchange(node, self.reads, self._linked)
        node.fetcher = self.reads
        #: With ``https://`` links: verify the servers dialled against these CAs, not the system's.
        tls = client_context(ca_file) if ca_file else None
        #: Resume tickets given to sites that dialled in (:mod:`.tickets`).
        self.tickets = Tickets()
        #: Dials on clock taken here since this server started (:mod:`.clocks`).
        self.clocks = Clocks(time.time())
        self.dialler = Dialler(node, self.partials, self.exchange.meter, self._state, self._run, tls)

    @property
    def sessions(self) -> dict[str, Session]:
        return self.exchange.sessions

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        now = time.time()
        self.offline_since.update({c.name: now for c in self.configs})
        self._tasks = [asyncio.create_task(self.dialler.dial(c)) for c in self.configs]

    async def stop(self) -> None:
        """Stop dialling, close every connection dialled in (in session or still proving
        its site) and fail the reads waiting on them, all at once; peers that do not
        answer the close within :data:`CLOSE_GRACE` seconds are cut off."""
        for task in self._tasks:
            task.cancel()
        closing = [ws.close(code=WSCloseCode.GOING_AWAY) for ws in self._accepted]
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await asyncio.gather(*closing, *self._tasks, return_exceptions=True)
        except TimeoutError:
            log.info("links not closed within %.0f s were cut off", CLOSE_GRACE)
        self.reads.stop()

    async def _run(self, peer: Peer, ws: WebSocket) -> None:
        session = Session(peer, ws, self.node.store.objects, self.exchange.arrivals.act, self.exchange.meter.count)
        handshake.tune(ws.get_extra_info("socket"))
        key = session.link.name if session.link is not None else session.peer
        self.offline_since.pop(key, None)
        self.refused.pop(session.peer, None)
        start = spawn(self.exchange.started(session))
        try:
            await session.run()
        finally:
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            self.exchange.ended(session)
            if self.sessions.get(session.peer) is None:
                self.offline_since.setdefault(key, time.time())
            if ws.close_code == handshake.UNTRUSTED:
                log.warning("link from %s closed at once: it does not trust this site's key "
                            "(check both sides' keyrings)", session.peer)

    def _linked(self, site: str) -> bool:
        """Whether this site has a link to ``site``: connected now, dialled (the link
        reached it before), or dialled in since this server started."""
        return site in self.sessions or site in self.dialler.dialed.values() or site in self.offline_since

    def _state(self, link: LinkConfig | None, peer: str, peer_push: tuple[str, ...]) -> dict[str, Any]:
        """What a handshake tells the peer: heads, subscription, resume points."""
        return {"heads": self.node.store.heads(),
                "subscribe": self.exchange.subscription(link, peer, peer_push).to_json(),
                "partials": self.partials.header()}

    # -- accepting ---------------------------------------------------------------------

    async def accept(self, request: web.Request) -> web.StreamResponse:
        """Take a peer's dialled connection: refuse a site not in the keyring at once,
        else run a session once the peer proved its site: on the resume ticket or the
        clock its dial carries (upgrading without a challenge), or on a fresh challenge
        (a dial without either, or whose ticket or clock is not taken here: one log
        line). A proof that fails closes the connection, or refuses the dial, with one
        log line."""
        store, own = self.node.store, self.node.site
        try:
            site, nonce = handshake.check_dial(store.keyring, own, request.headers)
            quick = handshake.quick_dial(request.headers)
            on, proof = self._admit(site, nonce, request, quick) if quick else ("", "")
            options = (handshake.check_hello(handshake.KINDS[on][0], store.keyring, site, own, nonce, proof,
                                             quick.hello) if quick and proof else None)
        except NTError as exc:
            return self._refuse(request.headers.get("X-NT-Site") or request.remote or "?", request, exc)
        if on == handshake.CLOCK and options is not None:
            self.clocks.remember(site, nonce, proof)
        challenge = "" if options is not None else handshake.nonce()
        ws = web.WebSocketResponse(heartbeat=handshake.HEARTBEAT, max_msg_size=handshake.MAX_MESSAGE, compress=False)
        ws.headers.update(handshake.reply_headers(own, challenge))
        await ws.prepare(request)
        self._accepted.add(ws)
        try:
            if options is None:
                try:
                    options = handshake.check_hello(handshake.DIAL, store.keyring, site, own, nonce, challenge,
                                                    await handshake.receive_hello(ws))
                except (handshake.HandshakeError, TimeoutError) as exc:
                    if not ws.closed:  # closed here: this site is stopping
                        self._refuse(site, request, exc)
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"handshake refused")
                    return ws
            mine = self._state(None, site, check_topics(options.get("push") or []))
            if handshake.takes_tickets(request.headers):
                mine["ticket"] = self.tickets.issue(site, time.time())
            kind = handshake.KINDS[on][1] if proof else handshake.REPLY
            await ws.send_str(handshake.hello(kind, store.key, own, site, nonce, proof or challenge, mine))
            await self._run(Peer(site, None, options, self.partials, **handshake.peer_takes(request.headers)), ws)
        finally:
            self._accepted.discard(ws)
        return ws

    def _admit(self, site: str, nonce: str, request: web.Request, quick: handshake.QuickDial) -> tuple[str, str]:
        """How ``site`` may open this link at once (:data:`~.handshake.TICKET` or
        :data:`~.handshake.CLOCK`) and the ticket (used up either way) or clock its
        ``hello`` signs, or ``("", "")`` with one log line: the dial goes on as one
        without either, on a fresh challenge."""
        on, proof = handshake.proof_of(quick)
        now = time.time()
        why = (self.tickets.redeem(site, proof, now) if on == handshake.TICKET else
               self.clocks.check(site, nonce, proof, now))
        if why:
            log.warning("refused a %s from %s (%s): %s; asking for a proof on a fresh challenge",
                        "resume ticket" if on == handshake.TICKET else "dial on clock", site, request.remote, why)
            return "", ""
        return on, proof

    def _refuse(self, who: str, request: web.Request, exc: BaseException) -> web.Response:
        """Log and list a refused dial; the answer that says why (before an upgrade)."""
        reason = " ".join(str(exc).split())[:300] if isinstance(exc, NTError) else describe(exc)
        log.warning("refused a link from %s (%s): %s", who, request.remote, reason)
        self.refused[who] = {"at": time.time(), "reason": reason}
        body = exc.to_json() if isinstance(exc, NTError) else {"error": "forbidden", "message": reason}
        status = exc.status if isinstance(exc, NTError) else 403
        return web.json_response(body, status=status, headers={handshake.REFUSED: reason[:300]})

    # -- routing reads -----------------------------------------------------------------

    def route(self, site: str | None) -> Session | None:
        """The session a read of ``site``'s data goes over: the site's own, else a
        dialled link that allows lazy reads."""
        return route(site, self.sessions, lambda s: s.link is not None and s.link.lazy)

    def status(self) -> list[dict[str, Any]]:
        """Per link and peer, as things are now: connected (last contact, queue) or since
        when offline and why; traffic today. Peers that dialled in stay listed, offline,
        after their session ended; sites refused at a handshake are listed with why.
        ``refused``: whose data the peer refuses to fetch for this site, and why;
        ``refusing``: whose data this site refuses to fetch for the peer."""
        label = self.exchange.label
        out = []
        for config in self.configs:
            peer = self.dialler.dialed.get(config.name, "")
            session = self.sessions.get(peer)
            sent, received = self.exchange.meter.today(config.name)
            live = session is not None and session.link is config
            out.append({
                "link": config.name, "url": config.url, "peer": peer, "dialled": True,
                "connected": live, "error": "" if live else self.dialler.last_error.get(config.name, ""),
                "offline_since": None if live else self.offline_since.get(config.name),
                "push": list(config.push), "prefetch": list(config.prefetch), "lazy": config.lazy,
                "budget": config.budget, "sent_today": sent, "received_today": received,
                **self._refusals(peer),
                **({k: v for k, v in session.status(label).items() if k not in ("link", "peer", "dialled")}
                   if session is not None and live else {}),
            })
        for session in self.sessions.values():
            if session.link is None:
                sent, received = self.exchange.meter.today(session.name)
                out.append({**session.status(label), **self._refusals(session.peer), "connected": True,
                            "sent_today": sent,
                            "received_today": received, "error": "", "offline_since": None})
        dialled_in = {s.peer for s in self.sessions.values() if s.link is None}
        for peer, since in sorted(self.offline_since.items()):
            if peer not in dialled_in and all(c.name != peer for c in self.configs):
                sent, received = self.exchange.meter.today(f"{peer} (dialled in)")
                out.append({"link": f"{peer} (dialled in)", "peer": peer, "dialled": False, "connected": False,
                            **self._refusals(peer),
                            "offline_since": since, "error": "", "sent_today": sent,
                            "received_today": received})
        for who, refusal in sorted(self.refused.items()):
            out.append({"link": who, "peer": who, "dialled": False, "connected": False,
                        "offline_since": refusal["at"], "error": f"refused here: {refusal['reason']}",
                        "sent_today": 0, "received_today": 0, **self._refusals(who)})
        return out

    def _refusals(self, peer: str) -> dict[str, list[dict[str, Any]]]:
        arrivals = self.exchange.arrivals
        return {"refused": [r.to_json() for r in arrivals.refused.of(peer)],
                "refusing": [r.to_json() for r in arrivals.refusing.of(peer)]}


LINKS = web.AppKey("links", Links)


@routes.get("/link")
async def link(request: web.Request) -> web.StreamResponse:
    """A peer dialling in (WebSocket)."""
    return await request.app[LINKS].accept(request)
