"""Opening a link: who the peers are, proven with their site keys on fresh challenges,
and what each says about itself.

1. The dialler opens ``GET /link`` naming its site (``X-NT-Site``) and a fresh nonce
   (``X-NT-Nonce``). The listener refuses a site not in its keyring before anything
   else, and upgrades with its own site and a fresh challenge (``X-NT-Challenge``).
2. The dialler's first message, ``hello``, signs both nonces and both site names with
   its site key, and carries its options.
3. The listener checks it and answers with its own ``hello``, signing the same with
   its key, and its options. The dialler checks that, and the session begins.

That costs two round trips before data flows. A quick dial costs one: the dialler's
``hello`` goes in the dial itself (``X-NT-Hello``), signing in place of a challenge
either a resume ticket (:mod:`.tickets`) or its clock (:mod:`.clocks`), and the
listener upgrades without a challenge and sends its ``hello`` followed at once by data.

- On a ticket: a listener gives a dialler that proved its site a fresh random ticket in
  its ``hello`` (option ``ticket``), good once, for that site only, for 10 minutes. The
  next dial carries it (``X-NT-Ticket``) and the ``hello`` of kind ``dial on ticket``;
  the listener takes the ticket back for good and answers ``reply on ticket``.
- On clock, when the dialler holds no ticket but knows the site it dials (reached
  before, or listing the link's URL in its keyring): the dial carries the dialler's
  clock (``X-NT-Clock``, milliseconds since the epoch) and the ``hello`` of kind ``dial
  on clock`` signing it with both site names and the dial's nonce. The listener takes
  it if the clock is within a minute of its own and not before the listener started,
  and it took no dial of that site with that nonce within the window (a memory of at
  most 4,096, refusing rather than growing), and answers ``reply on clock``.

A ticket a listener does not hold (used already, another site's, expired, or issued
before a restart) or a clock it does not take (off by more than the window, before its
start, a nonce used already, its memory full) is refused with one log line, and the
dial goes on as one without: the upgrade carries a challenge, and the dialler, seeing
it, proves its site on it as in step 2. A dial whose ticket or clock is good but whose
signature is not is refused (``403``). A dialler prefers a ticket to its clock.

Both sides also name, in a header of the upgrade (``X-NT-Takes``), what they take
beyond the first release of this protocol: ``checkpoints`` (a log it lacks started
from a checkpoint the other offers), ``tickets``, ``batches`` (small objects sent
together in one compressed message, see :mod:`.wire`), ``refusals`` (it reads a
``refused`` message: why the other side cannot fetch a third site's data on its
behalf, see :mod:`.refusals`), ``ranges`` (it answers a ``ranges`` message with
verified parts of blocks, and is sent only the blocks of a read span it does not read
in parts, see :mod:`.ranges`), ``leaves`` (with ``ranges``: asked to, it sends the
leaves a read span needs right after the file record asked for with that span, and
takes them so, a round trip less) and ``clock`` (it takes dials on clock; a dialler
stops sending them to a listener whose upgrade does not say so, or that refuses one as
malformed). A side naming nothing is sent only what every side of "link 2" reads, so
both versions keep linking.

Each side signs a challenge the other made up for this connection, a ticket it made up
for exactly one later connection, or, from a dialler, its clock and fresh nonce for
this listener: a recorded dial replayed is refused by the listener's memory of nonces
within the window and by its clock outside it (and after a restart, since dials signed
before it are refused), so a recorded handshake proves nothing on another connection.
Signing the listener's name keeps a dial made to one site from opening a link at
another that trusts the same dialler. Nothing but the two site names crosses before the
dialler's proof; headers and options are parsed strictly
(:class:`~eurec4a_nt.schema.LinkOptions`, :class:`~eurec4a_nt.schema.TicketDial`,
:class:`~eurec4a_nt.schema.ClockDial`). Over plain HTTP a man in the middle could still
relay a whole session; TLS (``https://`` links) closes that, and a dial cannot be
recorded there (docs/security.md).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import socket
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import WSMsgType

from ..entries import check_site
from ..errors import BadInput, Forbidden, NTError, Unauthorized
from ..keyring import Keyring, SiteKey, verify_signature
from ..schema import ClockDial, LinkOptions, TicketDial, convert, decode

#: Seconds a side waits for the other's ``hello``.
HELLO_TIMEOUT = 30.0
#: Largest WebSocket message a link accepts (a batch of commits fits; a piece is 64 KiB).
MAX_MESSAGE = 16 << 20
#: Seconds between WebSocket pings on a link.
HEARTBEAT = 15.0
#: Close code a dialler sends when the site it reached did not prove to be the one trusted.
UNTRUSTED = 4403
#: Header of a refused dial: why (the dialler shows it instead of a bare 403).
REFUSED = "X-NT-Refused"
#: Header of a dial and its upgrade: what the side takes beyond the first release.
TAKES = "X-NT-Takes"
#: Headers of a dial on a resume ticket or on clock: the ticket or the dialler's clock,
#: and the dialler's ``hello`` signing it.
TICKET, CLOCK, HELLO = "X-NT-Ticket", "X-NT-Clock", "X-NT-Hello"
#: What a ``hello`` proves: kinds of the signed text (see :func:`hello`).
DIAL, REPLY, DIAL_ON_TICKET, REPLY_ON_TICKET = "dial", "reply", "dial on ticket", "reply on ticket"
DIAL_ON_CLOCK, REPLY_ON_CLOCK = "dial on clock", "reply on clock"
#: What this version takes: resume tickets (see :func:`takes_tickets`), dials on clock
#: (see :func:`takes_clock`), and what a session serves by (see :func:`peer_takes`).
_CHECKPOINTS, _TICKETS, _BATCHES, _REFUSALS, _RANGES, _LEAVES, _CLOCK = (
    "checkpoints", "tickets", "batches", "refusals", "ranges", "leaves", "clock")
_TAKES = f"{_CHECKPOINTS} {_TICKETS} {_BATCHES} {_REFUSALS} {_RANGES} {_LEAVES} {_CLOCK}"
#: A dial that proves the dialler's site at once: on a resume ticket or on its clock.
QuickDial = TicketDial | ClockDial
#: Per way of a quick dial: the kinds of the dialler's and of the listener's ``hello``.
KINDS = {TICKET: (DIAL_ON_TICKET, REPLY_ON_TICKET), CLOCK: (DIAL_ON_CLOCK, REPLY_ON_CLOCK)}
_NOTSENT_LOWAT = 128 << 10


class HandshakeError(NTError):
    """The peer did not complete the handshake (wrong proof, wrong message, silence)."""

    status = 403
    code = "forbidden"


def nonce() -> str:
    """A fresh random nonce (a dialler's ``X-NT-Nonce``, a listener's challenge)."""
    return secrets.token_hex(16)


def _proof_text(kind: str, signer: str, other: str, dial_nonce: str, challenge: str) -> bytes:
    return f"eurec4a-nt link 2 {kind}\n{signer}\n{other}\n{dial_nonce}\n{challenge}".encode()


async def receive_hello(ws: Any) -> str | None:
    """The other side's first message, its text (None if it is not text), within
    :data:`HELLO_TIMEOUT` in all: pings and pongs meanwhile do not extend the wait, as
    they would with ``ws.receive(timeout=)``. Raises TimeoutError after that."""
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            message = await ws.receive()
    except TimeoutError:
        raise TimeoutError(f"no hello within {HELLO_TIMEOUT:.0f} s") from None
    return message.data if message.type == WSMsgType.TEXT else None


def dial_headers(site: str, dial_nonce: str, on: str = "", proof: str = "", signed: str = "") -> dict[str, str]:
    """The headers a dialling site opens with: who it is and its fresh nonce; on a
    quick dial (``on`` :data:`TICKET` or :data:`CLOCK`) also the ticket or clock
    (``proof``) and its ``hello`` signing it (``signed``)."""
    headers = {"X-NT-Site": site, "X-NT-Nonce": dial_nonce, TAKES: _TAKES}
    if on:
        headers |= {on: proof, HELLO: signed}
    return headers


def check_dial(keyring: Keyring, own: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """The dialling site and its nonce, if the site may link here at all.

    Raises :class:`BadInput` for a malformed site or nonce, :class:`Forbidden` for a
    site not in the keyring or this site itself (before any upgrade or signature).
    """
    site = check_site(headers.get("X-NT-Site", ""))
    dial_nonce = headers.get("X-NT-Nonce", "")
    if len(dial_nonce) != 32 or not all(c in "0123456789abcdef" for c in dial_nonce):
        raise Unauthorized("a link must name its site (X-NT-Site) and a fresh nonce (X-NT-Nonce, 32 hex digits)")
    if site == own:
        raise Forbidden("a site cannot link to itself")
    if site not in keyring.sites:
        raise Forbidden(f"site {site} is not in the keyring")
    return site, dial_nonce


def quick_dial(headers: Mapping[str, str]) -> QuickDial | None:
    """The ticket or clock and the signed ``hello`` a dial opens on, None for a dial
    without.

    Raises :class:`BadInput` if a header is malformed or comes without the other, or
    if a dial carries both a ticket and a clock.
    """
    if CLOCK in headers:
        if TICKET in headers:
            raise BadInput("a dial opens on a ticket (X-NT-Ticket) or on clock (X-NT-Clock), not both")
        return convert({"clock": headers[CLOCK], "hello": headers.get(HELLO, "")}, ClockDial,
                       "a dial on clock (X-NT-Clock, X-NT-Hello)")
    if TICKET not in headers and HELLO not in headers:
        return None
    return convert({"ticket": headers.get(TICKET, ""), "hello": headers.get(HELLO, "")}, TicketDial,
                   "a dial on a ticket (X-NT-Ticket, X-NT-Hello)")


def proof_of(dial: QuickDial) -> tuple[str, str]:
    """How a quick dial proves its site (:data:`TICKET` or :data:`CLOCK`, a key of
    :data:`KINDS`) and what its ``hello`` signs in place of a challenge."""
    return (TICKET, dial.ticket) if isinstance(dial, TicketDial) else (CLOCK, dial.clock)


def reply_headers(site: str, challenge: str) -> dict[str, str]:
    """The headers a listening site upgrades with: who it is and its fresh challenge
    (none, ``""``, when it took the dial's ticket or clock)."""
    return {"X-NT-Site": site, TAKES: _TAKES, **({"X-NT-Challenge": challenge} if challenge else {})}


def _takes(headers: Mapping[str, str], what: str) -> bool:
    return what in headers.get(TAKES, "").replace(",", " ").split()


def takes_checkpoints(headers: Mapping[str, str]) -> bool:
    """Whether the other side's dial or upgrade says it starts a log it lacks from a
    checkpoint offered over the link (an older version says nothing: it is sent
    every commit, as before)."""
    return _takes(headers, _CHECKPOINTS)


def takes_tickets(headers: Mapping[str, str]) -> bool:
    """Whether a dial says its side reads a resume ticket in the listener's ``hello``
    (an older version says nothing and is given none: its options are strict)."""
    return _takes(headers, _TICKETS)


def peer_takes(headers: Mapping[str, str]) -> dict[str, bool]:
    """What the other side's dial or upgrade says it takes of what this side serves it
    by, as the flags of :class:`~.core.Peer`: ``checkpoints``, ``batches`` (small objects
    together in one message), ``refusals`` (``refused`` messages), ``ranges`` (it answers
    ``ranges`` messages and reads parts of blocks) and ``leaves`` (it sends the leaves a
    read span needs right after the record, and takes them so). An older version says
    nothing of some: it is sent each object alone, no refusals, whole blocks, as before."""
    return {what: _takes(headers, what) for what in (_CHECKPOINTS, _BATCHES, _REFUSALS, _RANGES, _LEAVES)}


def takes_clock(headers: Mapping[str, str]) -> bool:
    """Whether the other side's upgrade says it takes dials on clock (an older version
    says nothing: it is dialled with a challenge)."""
    return _takes(headers, _CLOCK)


def hello(kind: str, key: SiteKey, me: str, peer: str, dial_nonce: str, challenge: str,
          options: Mapping[str, Any]) -> str:
    """A ``hello`` message: ``kind`` is :data:`DIAL` or :data:`REPLY` (``challenge``
    the listener's), or one of :data:`KINDS` (``challenge`` the ticket or clock)."""
    signature = key.sign(_proof_text(kind, me, peer, dial_nonce, challenge))
    return json.dumps({"type": "hello", "signature": signature, "options": dict(options)}, separators=(",", ":"))


class _Hello(msgspec.Struct, tag_field="type", tag="hello", forbid_unknown_fields=True):
    signature: str
    options: LinkOptions = msgspec.field(default_factory=LinkOptions)


def check_hello(kind: str, keyring: Keyring, signer: str, me: str, dial_nonce: str, challenge: str,
                text: object) -> dict[str, Any]:
    """The options of ``signer``'s ``hello`` (a text message), once its signature over
    this connection's nonces checks out with ``signer``'s key from the keyring.

    Raises :class:`HandshakeError` saying what was wrong.
    """
    if not isinstance(text, str):
        raise HandshakeError(f"{signer or 'the peer'} did not start with a hello message "
                             "(another version of eurec4a-nt?)")
    try:
        body = decode(text.encode(), _Hello, "hello")
    except (BadInput, NTError) as exc:
        raise HandshakeError(f"{signer}: malformed handshake ({exc})") from None
    known = keyring.sites.get(signer)
    if known is None:
        raise HandshakeError(f"site {signer or '?'} is not in the keyring")
    if not verify_signature(known.public_key, _proof_text(kind, signer, me, dial_nonce, challenge), body.signature):
        raise HandshakeError(f"site {signer} did not prove its identity for this connection "
                             "(a wrong key, or a replayed handshake)")
    return {k: v for k, v in msgspec.to_builtins(body.options).items() if v is not None}


def peer_site(headers: Mapping[str, str], signed_for: str = "") -> tuple[str, str]:
    """The listener's site and challenge from its upgrade answer. The challenge is
    ``""`` when the dial was a quick one signed for site ``signed_for`` and the
    listener took it (its ``hello`` follows unasked). :class:`HandshakeError` if it
    sent no challenge otherwise (another version, not a site server, or another site
    than the dial was signed for)."""
    site, challenge = headers.get("X-NT-Site", ""), headers.get("X-NT-Challenge", "")
    try:
        check_site(site)
    except BadInput:
        raise HandshakeError("the server answering is not a site server of this version "
                             "(no X-NT-Site in its answer)") from None
    if not challenge and signed_for and site != signed_for:
        raise HandshakeError(f"the server answering is site {site}, not {signed_for}")
    if len(challenge) != 32 and not (signed_for and not challenge):
        raise HandshakeError(f"site {site} sent no challenge: it runs another version of eurec4a-nt")
    return site, challenge


def retry_delay(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (1, 2, ...) after a link failed.

    Satellite drops are often a few seconds long and every second of a short uptime
    counts, so for the first 3 s a try every 0.2 s (one SYN each); then the delay
    doubles up to a minute. Jitter keeps sites from retrying in step.
    """
    base = 0.2 if attempt <= 15 else min(0.2 * 2 ** (attempt - 15), 60.0)
    return base * random.uniform(0.8, 1.2)


def tune(sock: socket.socket | None) -> None:
    """Keep little unsent data in the kernel so urgent objects are not stuck behind bulk."""
    if sock is not None and hasattr(socket, "TCP_NOTSENT_LOWAT"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _NOTSENT_LOWAT)
        except OSError:
            pass
