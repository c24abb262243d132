"""Dialling a site's configured links: one session kept up per link, with back-off
(and jitter) while it fails, the listener proven on each connection
(:mod:`.handshake`), and why a link is down kept for ``status``."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..errors import Forbidden
from ..node import Node
from ..schema import MAX_HELLO_HEADER
from . import handshake
from .clocks import stamp
from .config import LinkConfig
from .core import Peer
from .meter import Meter
from .partials import Partials
from .sender import WebSocket
from .tickets import TTL, Held

log = logging.getLogger(__name__)

#: Seconds before its listener's expiry a resume ticket is no longer used (it is refused then).
_MARGIN = 60.0
#: Runs a session once its handshake is done; returns when it ended.
Run = Callable[[Peer, WebSocket], Awaitable[None]]
#: What a handshake tells the peer about this site (heads, subscription, resume points).
State = Callable[[LinkConfig | None, str, tuple[str, ...]], dict[str, Any]]


class Dialler:
    """The dialled side of a site's links.

    ``state`` gives what the ``hello`` tells the listener, ``run`` runs the session
    once both sides proved their sites; ``tls`` verifies ``https://`` listeners.
    """

    def __init__(self, node: Node, partials: Partials, meter: Meter, state: State, run: Run,
                 tls: ssl.SSLContext | None = None) -> None:
        self.node = node
        self.partials = partials
        self.meter = meter
        self.state = state
        self.run = run
        self.tls = tls
        #: Per configured link: the site it reached last.
        self.dialed: dict[str, str] = {}
        #: Per configured link: why it is down now (cleared once a session runs).
        self.last_error: dict[str, str] = {}
        self._replies: dict[str, Any] = {}
        #: Per configured link: the resume ticket its listener gave for the next dial.
        self.tickets: dict[str, Held] = {}
        #: Configured links whose listener does not take dials on clock (another version).
        self.no_clock: set[str] = set()

    async def dial(self, config: LinkConfig) -> None:
        """Keep one session to ``config.url`` up, backing off (with jitter) while it fails.

        Whatever ends a session (the network, a refusal, a handshake the peer got
        wrong, another version, a bug) ends only that session: the error is kept for
        ``status``, logged once (not at every redial), and the link dials again.
        """
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15)
        tracing = aiohttp.TraceConfig()
        tracing.on_request_end.append(self._answered)
        connector = aiohttp.TCPConnector(ssl=self.tls) if self.tls else None
        async with aiohttp.ClientSession(timeout=timeout, trace_configs=[tracing], connector=connector) as http:
            while True:
                quiet = False
                try:
                    if await self._connect(http, config):
                        attempt = 0
                    error, quiet = "the session ended; reconnecting", True
                except aiohttp.WSServerHandshakeError as exc:
                    why = exc.headers.get(handshake.REFUSED) if exc.headers else None
                    error = (f"refused by {config.url}: {why}" if why else
                             f"{config.url} answered {exc.status} {exc.message}")
                except (Forbidden, handshake.HandshakeError) as exc:
                    error = f"refused {config.url}: {exc}"
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    error, quiet = describe(exc), True
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure ends this session only
                    error = describe(exc)
                if self.last_error.get(config.name) != error:
                    (log.info if quiet else log.warning)("link %s: %s", config.name, error)
                self.last_error[config.name] = error
                attempt += 1
                await asyncio.sleep(handshake.retry_delay(attempt))

    async def _answered(self, http: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
        """Keep the headers the listener answered a dial with (by the dial's nonce)."""
        nonce = params.headers.get("X-NT-Nonce")
        if nonce:
            self._replies[nonce] = params.response.headers

    async def _connect(self, http: aiohttp.ClientSession, config: LinkConfig) -> bool:
        """One session over the link; True once it was established.

        Opens on the resume ticket the listener gave last time, if one is held and
        good, else on this site's clock if the site answering is known (reached before,
        or listing the link's URL in the keyring): the ``hello`` goes with the dial, and
        the listener's comes back with the upgrade. The ticket is kept until a dial
        carrying it gets an answer (a dial lost in an outage did not spend it). Raises
        :class:`~.handshake.HandshakeError` if the listener does not prove its site on
        this connection's nonce (the connection is closed with
        :data:`~.handshake.UNTRUSTED`).
        """
        site, nonce = self.node.site, handshake.nonce()
        options = {"priority": list(config.priority), "essential": list(config.essential),
                   "rate": config.down_rate, "bulk": self.meter.bulk_allowed(config),
                   "push": list(config.push), **self.state(config, "", ())}
        on, proof, peer = self._quick(config)
        signed = handshake.hello(handshake.KINDS[on][0], self.node.store.key, site, peer, nonce, proof,
                                 options) if on else ""
        if len(signed) > MAX_HELLO_HEADER:
            on, signed = "", ""
        try:
            try:
                headers = handshake.dial_headers(site, nonce, on, proof, signed)
                ws = await http.ws_connect(config.url + "/link", headers=headers, heartbeat=handshake.HEARTBEAT,
                                           max_msg_size=handshake.MAX_MESSAGE, compress=0)
            except aiohttp.WSServerHandshakeError as exc:
                self.tickets.pop(config.name, None)  # answered: the listener took the ticket, or refused it
                if on == handshake.CLOCK and exc.status == 400:
                    self.no_clock.add(config.name)  # a version that reads X-NT-Hello only with a ticket
                raise
            self.tickets.pop(config.name, None)
            async with ws:
                try:
                    reply = self._replies.pop(nonce, {})
                    peer, challenge = handshake.peer_site(reply, peer if on else "")
                    if challenge:
                        await ws.send_str(handshake.hello(handshake.DIAL, self.node.store.key, site, peer, nonce,
                                                          challenge, options))
                    kind = handshake.REPLY if challenge else handshake.KINDS[on][1]
                    theirs = handshake.check_hello(kind, self.node.store.keyring, peer, site, nonce,
                                                   challenge or proof, await handshake.receive_hello(ws))
                except handshake.HandshakeError as exc:
                    await ws.close(code=handshake.UNTRUSTED, message=str(exc).encode()[:120])
                    raise
                (self.no_clock.discard if handshake.takes_clock(reply) else self.no_clock.add)(config.name)
                given = theirs.pop("ticket", None)
                if given:
                    self.tickets[config.name] = Held(peer, given, time.time() + TTL - _MARGIN)
                self.dialed[config.name] = peer
                self.last_error.pop(config.name, None)
                core = Peer(peer, config, theirs, self.partials, bulk=self.meter.bulk_allowed(config),
                            **handshake.peer_takes(reply))
                await self.run(core, ws)
        finally:
            self._replies.pop(nonce, None)
        return True

    def _quick(self, config: LinkConfig) -> tuple[str, str, str]:
        """How the next dial of ``config`` proves this site at once, what it signs and
        the site it signs for: the resume ticket held (:data:`~.handshake.TICKET`),
        else this site's clock (:data:`~.handshake.CLOCK`) if the site answering is
        known and takes dials on clock; ``("", "", "")`` if neither."""
        now, held = time.time(), self.tickets.get(config.name)
        if held is not None and held.good(now):
            return handshake.TICKET, held.ticket, held.peer
        peer = self.dialed.get(config.name) or self.node.store.keyring.site_at(config.url)
        if peer and config.name not in self.no_clock:
            return handshake.CLOCK, stamp(now), peer
        return "", "", ""


def describe(exc: BaseException) -> str:
    """One line saying what ended a session."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

