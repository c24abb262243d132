"""Opening a link: who the peers are, proven with their site keys, and what each says
about itself (``X-NT-Options``).

The dialler signs a fresh nonce and time; the listener checks it against the keyring
and answers with its own signature over the nonce, so no tokens are exchanged
between sites. Both sides put their log heads, subscription and resume points in
the handshake, so they send from the first moment of a session.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any

from ..entries import check_site
from ..errors import Forbidden, Unauthorized
from ..keyring import Keyring, SiteKey, verify_signature

#: A dialler's signed time may be off by this many seconds.
MAX_SKEW = 600
_NOTSENT_LOWAT = 128 << 10


def _proof_text(kind: str, site: str, nonce: str, when: str = "") -> bytes:
    return f"eurec4a-nt link {kind}\n{site}\n{nonce}\n{when}".encode()


def dial_headers(site: str, key: SiteKey, options: Mapping[str, Any]) -> dict[str, str]:
    """The headers a dialling site sends: who it is, its signed nonce, its options."""
    nonce, when = secrets.token_hex(16), str(int(time.time()))
    return {"X-NT-Site": site, "X-NT-Nonce": nonce, "X-NT-Time": when,
            "X-NT-Signature": key.sign(_proof_text("dial", site, nonce, when)),
            "X-NT-Options": json.dumps(options, separators=(",", ":"))}


def check_proof(keyring: Keyring, site: str, signature: str, text: bytes) -> None:
    """Raise :class:`Forbidden` unless ``site`` is in the keyring and signed ``text``."""
    known = keyring.sites.get(site)
    if known is None:
        raise Forbidden(f"site {site or '?'} is not in the keyring")
    if not verify_signature(known.public_key, text, signature):
        raise Forbidden(f"site {site} did not prove its identity")


def check_dial(keyring: Keyring, own: str, headers: Mapping[str, str]) -> str:
    """The dialling site named in ``headers``, once its proof is checked.

    Raises :class:`Unauthorized` without a proof, :class:`Forbidden` for a wrong or
    stale one or a site dialling itself.
    """
    site = check_site(headers.get("X-NT-Site", ""))
    nonce = headers.get("X-NT-Nonce", "")
    when = headers.get("X-NT-Time", "0")
    if not nonce or not when.isdigit():
        raise Unauthorized("a link must send X-NT-Nonce, X-NT-Time and X-NT-Signature")
    if abs(time.time() - int(when)) > MAX_SKEW:
        raise Forbidden("link proof is too old or from the future: check the clocks")
    if site == own:
        raise Forbidden("a site cannot link to itself")
    check_proof(keyring, site, headers.get("X-NT-Signature", ""), _proof_text("dial", site, nonce, when))
    return site


def reply_headers(site: str, key: SiteKey, nonce: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The headers a listening site answers with: who it is, its proof, its options."""
    return {"X-NT-Site": site, "X-NT-Proof": key.sign(_proof_text("reply", site, nonce)),
            "X-NT-Options": json.dumps(options, separators=(",", ":"))}


def check_reply(keyring: Keyring, nonce: str, headers: Mapping[str, str]) -> str:
    """The listening site named in ``headers``; raise :class:`Forbidden` unless it
    signed our ``nonce``."""
    peer = headers.get("X-NT-Site", "")
    check_proof(keyring, peer, headers.get("X-NT-Proof", ""), _proof_text("reply", peer, nonce))
    return peer


def options(headers: Mapping[str, str]) -> dict[str, Any]:
    """The peer's handshake options (``X-NT-Options``, JSON); {} if absent or malformed."""
    try:
        body = json.loads(headers.get("X-NT-Options", "{}"))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


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
