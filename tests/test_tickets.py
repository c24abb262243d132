"""Resume tickets without sockets: the listener's ticket store (single use, bound to a
site, expiring, bounded) and the handshake's checks of a dial on a ticket."""

from __future__ import annotations

import json

import pytest

from eurec4a_nt.errors import BadInput
from eurec4a_nt.keyring import Keyring, KeyringSite, SiteKey
from eurec4a_nt.schema import MAX_HELLO_HEADER
from eurec4a_nt.sync import handshake
from eurec4a_nt.sync.tickets import PER_SITE, TTL, Held, Tickets

SHIP, HUB = SiteKey.generate(), SiteKey.generate()
KEYRING = Keyring({"RV-Meteor": KeyringSite("RV-Meteor", SHIP.public_key),
                   "OPS": KeyringSite("OPS", HUB.public_key)})
OPTIONS = {"heads": {"RV-Meteor": 3}, "subscribe": {"any": []}}


def test_a_ticket_is_good_once_for_its_site() -> None:
    tickets = Tickets()
    ticket = tickets.issue("RV-Meteor", 1000.0)
    assert len(ticket) == 32 and ticket != tickets.issue("RV-Meteor", 1000.0)
    assert tickets.redeem("RV-Meteor", ticket, 1001.0) == ""
    assert tickets.redeem("RV-Meteor", ticket, 1002.0) == "unknown or used already"
    assert tickets.status() == {"held": 1, "redeemed": 1, "refused": 1}


def test_a_ticket_of_another_site_is_refused_and_spent() -> None:
    tickets = Tickets()
    ticket = tickets.issue("RV-Meteor", 1000.0)
    assert tickets.redeem("BCO", ticket, 1001.0) == "issued to another site"
    assert tickets.redeem("RV-Meteor", ticket, 1002.0) == "unknown or used already"


def test_a_ticket_expires() -> None:
    tickets = Tickets()
    ticket = tickets.issue("RV-Meteor", 1000.0)
    assert tickets.redeem("RV-Meteor", ticket, 1000.0 + TTL) == "expired"
    held = Held("OPS", ticket, 1000.0 + TTL)
    assert held.good(1000.0 + TTL - 1) and not held.good(1000.0 + TTL)


def test_tickets_held_per_site_are_bounded_oldest_first() -> None:
    tickets = Tickets()
    issued = [tickets.issue("RV-Meteor", 1000.0 + i) for i in range(PER_SITE + 3)]
    other = tickets.issue("BCO", 1000.0)
    assert tickets.status()["held"] == PER_SITE + 1
    assert tickets.redeem("RV-Meteor", issued[0], 1010.0) == "unknown or used already"
    assert all(tickets.redeem("RV-Meteor", t, 1010.0) == "" for t in issued[-PER_SITE:])
    assert tickets.redeem("BCO", other, 1010.0) == ""
    # expired tickets are dropped when the site is given a new one
    tickets.issue("BCO", 1000.0)
    tickets.issue("BCO", 1000.0 + TTL + 1)
    assert tickets.status()["held"] == 1


def dial(ticket: str, key: SiteKey = SHIP, kind: str = handshake.DIAL_ON_TICKET,
         nonce: str = "a" * 32) -> dict[str, str]:
    signed = handshake.hello(kind, key, "RV-Meteor", "OPS", nonce, ticket, OPTIONS)
    return handshake.dial_headers("RV-Meteor", nonce, handshake.TICKET, ticket, signed)


def test_a_dial_on_a_ticket_proves_its_site_and_the_reply_proves_the_listeners() -> None:
    ticket = Tickets().issue("RV-Meteor", 0.0)
    headers = dial(ticket)
    assert handshake.takes_tickets(headers) and handshake.takes_checkpoints(headers)
    resume = handshake.quick_dial(headers)
    assert resume is not None and resume.ticket == ticket
    site, nonce = handshake.check_dial(KEYRING, "OPS", headers)
    options = handshake.check_hello(handshake.DIAL_ON_TICKET, KEYRING, site, "OPS", nonce, ticket, resume.hello)
    assert options["heads"] == {"RV-Meteor": 3}
    # the listener upgrades without a challenge; the dialler then expects its hello on the ticket
    assert handshake.peer_site(handshake.reply_headers("OPS", ""), "OPS") == ("OPS", "")
    with pytest.raises(handshake.HandshakeError, match="another version"):
        handshake.peer_site(handshake.reply_headers("OPS", ""))
    reply = handshake.hello(handshake.REPLY_ON_TICKET, HUB, "OPS", "RV-Meteor", nonce, ticket,
                            {"heads": {}, "ticket": "b" * 32})
    theirs = handshake.check_hello(handshake.REPLY_ON_TICKET, KEYRING, "OPS", "RV-Meteor", nonce, ticket, reply)
    assert theirs["ticket"] == "b" * 32


@pytest.mark.parametrize("forged", ["another key", "signed as a plain dial", "another nonce", "another ticket"])
def test_a_forged_dial_on_a_ticket_is_refused(forged: str) -> None:
    ticket = "c" * 32
    headers = {"another key": lambda: dial(ticket, key=HUB),
               "signed as a plain dial": lambda: dial(ticket, kind=handshake.DIAL),
               "another nonce": lambda: {**dial(ticket), "X-NT-Nonce": "d" * 32},
               "another ticket": lambda: {**dial(ticket), "X-NT-Ticket": "e" * 32}}[forged]()
    site, nonce = handshake.check_dial(KEYRING, "OPS", headers)
    resume = handshake.quick_dial(headers)
    assert resume is not None
    with pytest.raises(handshake.HandshakeError, match="did not prove"):
        handshake.check_hello(handshake.DIAL_ON_TICKET, KEYRING, site, "OPS", nonce, resume.ticket, resume.hello)


@pytest.mark.parametrize("headers", [
    {"X-NT-Ticket": "c" * 32},
    {"X-NT-Hello": "{}"},
    {"X-NT-Ticket": "C" * 32, "X-NT-Hello": "{}"},
    {"X-NT-Ticket": "c" * 33, "X-NT-Hello": "{}"},
    {"X-NT-Ticket": "c" * 32, "X-NT-Hello": "x" * (MAX_HELLO_HEADER + 1)},
])
def test_a_malformed_ticket_dial_is_bad_input(headers: dict[str, str]) -> None:
    with pytest.raises(BadInput, match="X-NT-Ticket"):
        handshake.quick_dial(headers)
    assert handshake.quick_dial({"X-NT-Site": "RV-Meteor"}) is None


def test_a_ticket_option_is_checked_strictly() -> None:
    reply = handshake.hello(handshake.REPLY, HUB, "OPS", "RV-Meteor", "a" * 32, "f" * 32, {"ticket": "not hex"})
    with pytest.raises(handshake.HandshakeError, match="malformed"):
        handshake.check_hello(handshake.REPLY, KEYRING, "OPS", "RV-Meteor", "a" * 32, "f" * 32, reply)
    assert json.loads(reply)["options"] == {"ticket": "not hex"}
