"""Dials on clock: a first dial that proves the dialler's site at once. The listener's
replay memory (window, start, single use, bounded), the handshake's checks, and real
servers: a first connection whose data flows after one round trip of an emulated link,
a replayed dial and a skewed clock falling back to a challenge, a bad signature refused,
and a dialler that does not name the capability linking as before."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from server_kit import start, start_with_sonde, status
from test_hostile_link import Dialler, FakeHub, bco, log_since

from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.emulator import EmulatorThread, LinkProfile
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.errors import BadInput
from eurec4a_nt.keyring import Keyring, KeyringSite, SiteKey
from eurec4a_nt.schema import MAX_HELLO_HEADER
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.sync import handshake
from eurec4a_nt.sync.clocks import CAPACITY, WINDOW, Clocks, stamp

OPTIONS = {"heads": {}, "subscribe": {"any": []}}


def test_a_clock_is_taken_once_within_the_window_and_after_the_start() -> None:
    clocks = Clocks(started=1000.0)
    assert clocks.check("BCO", "a" * 32, stamp(1010.0), 1010.5) == ""
    clocks.remember("BCO", "a" * 32, stamp(1010.0))
    assert "replayed" in clocks.check("BCO", "a" * 32, stamp(1010.0), 1011.0)
    assert clocks.check("RV-Meteor", "a" * 32, stamp(1010.0), 1011.0) == ""  # (site, nonce) pairs
    assert "more than 60 s" in clocks.check("BCO", "b" * 32, stamp(1010.0 - WINDOW - 1), 1010.0)
    assert "+61.0 s off" in clocks.check("BCO", "b" * 32, stamp(1010.0 + WINDOW + 1), 1010.0)
    assert "before this server started" in clocks.check("BCO", "b" * 32, stamp(999.0), 1001.0)
    assert clocks.status() == {"remembered": 1, "taken": 1, "refused": 4}


def test_the_replay_memory_is_bounded_and_refuses_when_full() -> None:
    clocks = Clocks(started=0.0)
    for i in range(CAPACITY):
        clocks.remember("BCO", f"{i:032x}", stamp(1000.0))
    assert "dials on clock taken" in clocks.check("BCO", "f" * 32, stamp(1000.0), 1001.0)
    # once their clock left the window, the remembered dials go and new ones are taken
    assert clocks.check("BCO", "f" * 32, stamp(1000.0 + WINDOW), 1000.0 + WINDOW + 1) == ""
    assert clocks.status()["remembered"] == 0


SHIP, HUB = SiteKey.generate(), SiteKey.generate()
KEYRING = Keyring({"RV-Meteor": KeyringSite("RV-Meteor", SHIP.public_key),
                   "OPS": KeyringSite("OPS", HUB.public_key, ["http://ops.example:8047/"])})


def test_a_dial_on_clock_proves_its_site_for_one_listener() -> None:
    nonce, clock = "a" * 32, stamp(time.time())
    signed = handshake.hello(handshake.DIAL_ON_CLOCK, SHIP, "RV-Meteor", "OPS", nonce, clock, OPTIONS)
    headers = handshake.dial_headers("RV-Meteor", nonce, handshake.CLOCK, clock, signed)
    quick = handshake.quick_dial(headers)
    assert quick is not None and handshake.proof_of(quick) == (handshake.CLOCK, clock)
    assert handshake.check_hello(handshake.DIAL_ON_CLOCK, KEYRING, "RV-Meteor", "OPS", nonce, clock,
                                 quick.hello)["heads"] == {}
    for kind, me, other_clock in ((handshake.DIAL_ON_TICKET, "OPS", clock), (handshake.DIAL_ON_CLOCK, "BCO", clock),
                                  (handshake.DIAL_ON_CLOCK, "OPS", stamp(time.time() + 1))):
        with pytest.raises(handshake.HandshakeError, match="did not prove"):
            handshake.check_hello(kind, KEYRING, "RV-Meteor", me, nonce, other_clock, quick.hello)
    # the dialler expects the site it signed for to answer without a challenge
    assert handshake.peer_site(handshake.reply_headers("OPS", ""), "OPS") == ("OPS", "")
    with pytest.raises(handshake.HandshakeError, match="not OPS"):
        handshake.peer_site(handshake.reply_headers("BCO", ""), "OPS")
    assert KEYRING.site_at("http://ops.example:8047") == "OPS" and KEYRING.site_at("http://x:1") == ""


@pytest.mark.parametrize("headers", [
    {"X-NT-Clock": "1764000000000"},
    {"X-NT-Clock": "176400000000", "X-NT-Hello": "{}"},
    {"X-NT-Clock": "1764000000000.5", "X-NT-Hello": "{}"},
    {"X-NT-Clock": "\u0661" * 13, "X-NT-Hello": "{}"},
    {"X-NT-Clock": "1764000000000", "X-NT-Hello": "x" * (MAX_HELLO_HEADER + 1)},
    {"X-NT-Clock": "1764000000000", "X-NT-Ticket": "c" * 32, "X-NT-Hello": "{}"},
])
def test_a_malformed_dial_on_clock_is_bad_input(headers: dict[str, str]) -> None:
    with pytest.raises(BadInput, match="X-NT-Clock"):
        handshake.quick_dial(headers)


# -- real servers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """The hub OPS in a campaign with BCO (played by the tests)."""
    proc = start(tmp_path_factory.mktemp("clock-dial") / "sites", "OPS", sites=["OPS", "RV-Meteor", "BCO"])
    try:
        yield proc
        assert "Traceback" not in proc.log_path.read_text(), proc.log_path.read_text()[-3000:]
    finally:
        proc.stop()


def on_clock(store: SiteStore, at: float, key: SiteKey | None = None) -> dict[str, str]:
    nonce, clock = handshake.nonce(), stamp(at)
    signed = handshake.hello(handshake.DIAL_ON_CLOCK, key or store.key, "BCO", "OPS", nonce, clock, OPTIONS)
    return handshake.dial_headers("BCO", nonce, handshake.CLOCK, clock, signed)


async def dial(dialler: Dialler, http: aiohttp.ClientSession, headers: dict[str, str], prove: bool = False
               ) -> tuple[str, aiohttp.WSMessage]:
    """Dial with ``headers``: the hub's challenge (``""`` if it took the dial) and first
    message; on a challenge, send the dial's own hello, or with ``prove`` a proper one."""
    async with http.ws_connect(dialler.hub.url + "/link", headers=headers, max_msg_size=0) as ws:
        nonce = headers["X-NT-Nonce"]
        _, challenge = handshake.peer_site(dialler.replies[nonce], "OPS")
        if challenge:
            await ws.send_str(handshake.hello(handshake.DIAL, bco(dialler.hub).key, "BCO", "OPS", nonce, challenge,
                                              OPTIONS) if prove else headers[handshake.HELLO])
        return challenge, await ws.receive(timeout=20)


@pytest.mark.timeout(60)
def test_a_dial_on_clock_opens_at_once_and_a_replayed_one_gets_a_challenge(hub: SiteProcess) -> None:
    dialler, store = Dialler(hub), bco(hub)
    headers = on_clock(store, time.time())

    async def run() -> None:
        async with dialler.session() as http:
            challenge, answer = await dial(dialler, http, headers)
            assert challenge == "" and handshake.takes_clock(dialler.replies[headers["X-NT-Nonce"]])
            theirs = handshake.check_hello(handshake.REPLY_ON_CLOCK, store.keyring, "OPS", "BCO",
                                           headers["X-NT-Nonce"], headers[handshake.CLOCK], answer.data)
            assert "heads" in theirs and len(theirs["ticket"]) == 32
            challenge, answer = await dial(dialler, http, headers)  # the same dial, recorded
            assert len(challenge) == 32 and answer.type != aiohttp.WSMsgType.TEXT

    before, counted = hub.log_path.read_text(), status(hub.url)["clocks"]
    asyncio.run(run())
    added = log_since(hub, before)
    assert added.count("refused a dial on clock from BCO") == 1 and "replayed" in added, added
    assert status(hub.url)["clocks"]["taken"] == counted["taken"] + 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("skew", [-2 * WINDOW, 2 * WINDOW])
def test_a_skewed_clock_falls_back_to_a_challenge_and_links(hub: SiteProcess, skew: float) -> None:
    dialler = Dialler(hub)

    async def run() -> tuple[str, aiohttp.WSMessage]:
        async with dialler.session() as http:
            return await dial(dialler, http, on_clock(bco(hub), time.time() + skew), prove=True)

    before = hub.log_path.read_text()
    challenge, answer = asyncio.run(run())
    assert len(challenge) == 32 and answer.type == aiohttp.WSMsgType.TEXT
    assert json.loads(answer.data)["type"] == "hello"
    added = log_since(hub, before)
    assert "refused a dial on clock from BCO" in added and "off this site's" in added, added


@pytest.mark.timeout(60)
def test_a_good_clock_with_a_bad_signature_is_403(hub: SiteProcess) -> None:
    dialler = Dialler(hub)

    async def run() -> None:
        async with dialler.session() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await dial(dialler, http, on_clock(bco(hub), time.time(), key=SiteKey.generate()))
            assert refused.value.status == 403

    before = hub.log_path.read_text()
    asyncio.run(run())
    assert "did not prove its identity" in log_since(hub, before)


@pytest.mark.timeout(60)
def test_a_dialler_not_naming_clock_links_on_a_challenge(hub: SiteProcess) -> None:
    """An older version sends no clock and names no ``clock``: it proves its site on a
    challenge as before."""
    dialler = Dialler(hub)

    async def run() -> aiohttp.WSMessage:
        async with dialler.session() as http:
            ws, answer = await dialler.open(http, takes="checkpoints tickets")
            await ws.close()
            return answer

    answer = asyncio.run(run())
    assert answer.type == aiohttp.WSMsgType.TEXT and "heads" in json.loads(answer.data)["options"]


@pytest.mark.timeout(120)
def test_a_dialler_sends_no_clock_to_a_listener_refusing_it_as_malformed(hub: SiteProcess, tmp_path: Path) -> None:
    with FakeHub("no-clock") as fake:
        url, root = f"http://127.0.0.1:{fake.port}", hub.store.parent
        SiteStore(root / "RV-Meteor").trust(Keyring({"OPS": KeyringSite("OPS", SiteStore(hub.store).key.public_key,
                                                                        [url])}))
        ship = SiteProcess(root / "RV-Meteor", args=["--link", url], log=tmp_path / "ship.log").start()
        try:
            wait_until(lambda: fake.dials >= 3, 60, "three dials")
        finally:
            ship.stop()
    assert fake.on_clock[:3] == [True, False, False]


@pytest.mark.timeout(120)
def test_a_first_connection_brings_data_after_one_round_trip(tmp_path: Path) -> None:
    """A ship whose keyring lists the hub at the link's URL dials on clock: over a link of
    0.4 s each way the hub starts sending data 0.4 s after the dial left (a dial on a
    challenge waits 1.2 s: the challenge goes down and the proof comes up first)."""
    delay = 0.4
    hub = start_with_sonde(tmp_path, 400_000)
    try:
        with EmulatorThread(hub.port, LinkProfile(down=None, up=None, delay=delay)) as link:
            url = f"http://127.0.0.1:{link.port}"
            ship_store = SiteStore(hub.store.parent / "BCO")
            ship_store.trust(Keyring({"RV-Meteor": KeyringSite("RV-Meteor", SiteStore(hub.store).key.public_key,
                                                                [url])}))
            ship = start(hub.store.parent, "BCO", args=["--link", url, "--prefetch", "sondes"])
            try:
                wait_until(lambda: link.timeline[-1][2] > 400_000, 60, "the sonde sent down")
                timeline = link.timeline
            finally:
                ship.stop()
        dialled = next(t for t, up, _ in timeline if up > 0)
        flowing = next(t for t, _, down in timeline if down > 100_000)
        assert flowing - dialled < 2 * delay, timeline[:20]
        assert status(hub.url)["clocks"]["taken"] == 1
        assert "refused a dial on clock" not in hub.log_path.read_text()
    finally:
        hub.stop()
