"""The sync core without sockets, servers or stores: events in, actions out.

Priorities, the budget, hand-over of a queue, push, prefetch and lazy-read rules are
each checked on plain values here; tests/test_sync.py checks the same over real links.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from wire_kit import pieces

from eurec4a_nt import hashtree
from eurec4a_nt.chunking import Block, FileRecord
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadInput
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Commit
from eurec4a_nt.logstate import CheckpointRef
from eurec4a_nt.manifests import Manifest, Ref
from eurec4a_nt.schema import link_message
from eurec4a_nt.sync import handshake
from eurec4a_nt.sync.actions import CatchUp, Join, Keep, Lacking, Prove, Receive, Relay, Say
from eurec4a_nt.sync.budget import FLUSH_BYTES, PIECE_ROOM, STOP_MARGIN, TokenBucket, Traffic, bulk_allowed
from eurec4a_nt.sync.config import LinkConfig
from eurec4a_nt.sync.core import Peer
from eurec4a_nt.sync.outbox import Follow, FollowKind, Outbox, Priority, SendItem
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.plan import Wants
from eurec4a_nt.sync.policy import (
    PushWaits,
    Selection,
    Subscription,
    by_priority,
    pushed,
    route,
    subscription,
    to_complete,
)
from eurec4a_nt.sync.wire import PIECE, RAW, Outgoing


def oid(name: str) -> ObjectId:
    return ObjectId.of(name.encode())


def entry(name: str, topics: tuple[str, ...], site: str = "RV-Meteor", size: int = 100) -> Entry:
    return Entry(name, "file", oid(name), size, "binary", topics, published="2020-02-01T10:00:00Z", site=site)


def peer(options: dict | None = None, link: LinkConfig | None = None, name: str = "OPS") -> Peer:
    return Peer(name, link, {"heads": {}} if options is None else options, Partials())


def begin(box: Outbox, item: SendItem, n: int) -> None:
    """Cut ``item`` into ``n`` pieces, as the session does once it read the object."""
    data = os.urandom(n * PIECE)
    box.begin(item, Outgoing(item.oid, RAW, None, data), [])


def says(actions: list, kind: str) -> list[dict]:
    return [a.body for a in actions if isinstance(a, Say) and a.kind == kind]


# -- priority --------------------------------------------------------------------------

def test_a_read_overtakes_a_bulk_object_within_one_piece() -> None:
    box = Outbox()
    box.queue([oid("raw")], Priority.BULK)
    raw = box.next(bulk=True)
    assert raw is not None
    begin(box, raw, 3)
    box.take_piece(raw)
    box.queue([oid("quicklook")], Priority.ESSENTIAL)
    box.queue([oid("read")], Priority.READ)
    order = []
    while (item := box.next(bulk=True)) is not None:
        if box.transfer(item) is None:
            begin(box, item, 1)
        piece, _ = box.take_piece(item)
        order.append(piece.oid)
    assert order == [oid("read"), oid("quicklook"), oid("raw"), oid("raw")]
    assert box.sent == {oid("read"), oid("quicklook"), oid("raw")} and not box.queued


def test_rank_orders_within_a_priority_and_a_queued_object_is_only_raised() -> None:
    box = Outbox()
    box.queue([oid("big")], Priority.BULK, (0, 5_000_000, 0.0))
    box.queue([oid("small")], Priority.BULK, (0, 1_000, 0.0))
    assert not box.queue([oid("small")], Priority.BULK)  # as urgent already: not again
    assert box.queue([oid("big")], Priority.READ)  # more urgent: raised
    assert [i.oid for i in box.waiting(5)] == [oid("big"), oid("small")]
    assert box.queued[oid("big")].priority is Priority.READ and len(box) == 2


def test_priorities_have_names_on_the_wire() -> None:
    assert [p.wire for p in Priority] == ["read", "essential", "bulk"]
    assert Priority.from_wire("read") is Priority.READ and Priority.from_wire("?") is Priority.BULK


# -- budget ----------------------------------------------------------------------------

def test_a_spent_budget_holds_bulk_back_but_not_essential_topics() -> None:
    box = Outbox()
    box.queue([oid("raw")], Priority.BULK)
    box.queue([oid("plan")], Priority.ESSENTIAL)
    first = box.next(bulk=False)
    assert first is not None and first.oid == oid("plan")
    box.drop(first.oid)
    assert box.next(bulk=False) is None  # bulk waits ...
    assert box.next(bulk=True).oid == oid("raw")  # ... until the budget allows it again
    assert bulk_allowed(None, 10**12) and bulk_allowed(1000, 999) and not bulk_allowed(1000, 1000)


def test_the_peer_is_told_only_when_bulk_changes() -> None:
    core = peer(link=LinkConfig("http://hub", budget=10 * STOP_MARGIN))
    assert core.budget(9 * STOP_MARGIN) == []
    assert says(core.budget(STOP_MARGIN // 2), "limits") == [{"bulk": False}]
    assert core.budget(STOP_MARGIN // 3) == []
    assert says(core.budget(10 * STOP_MARGIN), "limits") == [{"bulk": True}]  # a new day


def test_a_budget_holds_to_within_one_piece() -> None:
    core = peer(link=LinkConfig("http://hub", budget=10 * STOP_MARGIN))
    core.outbox.queue([oid("raw")], Priority.BULK)
    core.budget(STOP_MARGIN + PIECE_ROOM + 10)
    assert core.next_item() is not None  # a whole piece fits
    assert says(core.moved(PIECE_ROOM + 20), "limits") == [{"bulk": False}]  # the peer stops its bulk early
    assert core.next_item() is not None and core.moved(STOP_MARGIN - 20) == []
    assert core.allowance == 10 and core.next_item() is None  # not one more piece: it would not fit


def test_token_bucket_keeps_to_the_rate() -> None:
    bucket = TokenBucket(1000, now=0.0)
    assert bucket.delay(500, now=0.0) == 0.5  # nothing saved up yet
    assert bucket.delay(500, now=2.0) == 0.0  # one second's worth at most, then it is spent
    assert bucket.delay(1000, now=2.0) == 0.5


def test_traffic_is_written_out_in_batches() -> None:
    traffic = Traffic()
    assert not traffic.add("hub", sent=FLUSH_BYTES // 2)
    assert traffic.add("hub", received=FLUSH_BYTES // 2)
    assert traffic.pending("hub").total == FLUSH_BYTES
    counts = traffic.take("hub")
    assert (counts.sent, counts.received) == (FLUSH_BYTES // 2, FLUSH_BYTES // 2)
    assert traffic.pending("hub").total == 0


# -- hand-over -------------------------------------------------------------------------

def test_a_queue_handed_over_keeps_its_items_and_their_order() -> None:
    old = Outbox()
    old.queue([oid("a")], Priority.BULK, (1, 10, 0.0), {oid("a"): oid("base")}, Follow.ALL)
    old.queue([oid("b")], Priority.ESSENTIAL, (0, 10, 0.0))
    old.queue([oid("sent")], Priority.READ)
    item = old.next(bulk=True)
    begin(old, item, 1)
    old.take_piece(item)  # sent whole and acknowledged: not handed over
    old.acked(old.taken)
    b = old.next(bulk=True)
    begin(old, b, 2)
    old.take_piece(b)  # half sent: handed over, sent again from its resume point
    items = old.hand_over()
    assert {i.oid for i in items} == {oid("a"), oid("b")}
    a = next(i for i in items if i.oid == oid("a"))
    assert (a.priority, a.rank, a.base, a.follow) == (Priority.BULK, (1, 10, 0.0), oid("base"), Follow.ALL)

    new = Outbox()
    new.queue([oid("later")], Priority.BULK, (1, 10, 0.0))  # same rank, queued after a
    new.take(items)
    assert new.transfer(b) is None  # pieces are cut again (the peer says where to resume)
    assert [i.oid for i in new.waiting(5)] == [oid("b"), oid("a"), oid("later")]
    assert new.waiting(5)[1] is a


def test_what_a_drop_lost_in_flight_is_handed_over_in_its_place_in_line() -> None:
    old = Outbox()
    old.queue([oid("root")], Priority.BULK, (1, 10, 0.0), follow=Follow.ALL)
    old.queue([oid("first")], Priority.BULK, (1, 5, 0.0))
    old.queue([oid("later")], Priority.BULK, (1, 20, 0.0))
    sizes = []
    for _ in range(2):  # "first", then "root" go out whole
        item = old.next(bulk=True)
        begin(old, item, 1)
        piece, _ = old.take_piece(item)
        sizes.append(len(piece.pack()))
    assert old.taken == sum(sizes)
    old.acked(sizes[0])  # the peer got "first"; "root" was in flight when the link dropped
    items = old.hand_over()
    assert [i.oid for i in items] == [oid("later"), oid("root")]
    new = Outbox()
    new.take(items)
    assert [i.oid for i in new.waiting(5)] == [oid("root"), oid("later")]  # the root first, as before
    assert new.waiting(5)[0].follow == Follow.ALL  # and what is below it follows it again


def test_what_the_peer_has_is_never_sent_and_a_reader_may_ask_again() -> None:
    box = Outbox()
    box.queue([oid("x"), oid("y")], Priority.BULK)
    box.had([oid("x")])
    assert [i.oid for i in box.waiting(5)] == [oid("y")]
    assert not box.queue([oid("x")], Priority.READ)
    box.resend([oid("x")])
    assert box.queue([oid("x")], Priority.READ)


# -- push ------------------------------------------------------------------------------

def test_push_rules() -> None:
    ql = entry("ql.png", ("quicklook",))
    raw = entry("raw.bin", ("raw",))
    none = Subscription()
    link = LinkConfig("http://hub", push=("quicklook",))
    assert pushed(ql, "OPS", link, none) and not pushed(raw, "OPS", link, none)
    assert not pushed(ql, "RV-Meteor", link, none)  # a peer never gets its own entries back
    assert pushed(raw, "OPS", None, Subscription([Selection(("raw",))]))


def test_a_new_entry_is_pushed_whole_a_new_version_by_its_root() -> None:
    core = peer(link=LinkConfig("http://hub", essential=("quicklook",)))
    ql = entry("ql.png", ("quicklook",))
    actions = core.push(ql, new=True)
    assert says(actions, "pushing") == [{"roots": [ql.root]}]
    item = core.outbox.queued[ql.root]
    assert item.priority is Priority.ESSENTIAL and item.follow == Follow.ALL
    raw = entry("raw.bin", ("raw",))
    assert core.push(raw, new=False) == []
    assert core.outbox.queued[raw.root].follow == Follow.NOTHING
    assert core.outbox.queued[raw.root].priority is Priority.BULK


def test_a_push_waits_until_the_entry_is_whole_here() -> None:
    waits: PushWaits[str] = PushWaits()
    ql = entry("ql.png", ("quicklook",))
    waits.add(ql.root, [oid("block1"), oid("block2")])
    assert waits.waits(ql.root)
    waits.hold("OPS", ql)
    assert waits.unblocked([oid("other")]) == []
    assert waits.unblocked([oid("block1")]) == [ql]
    waits.add(ql.root, [])  # checked again: whole now
    assert waits.release(ql.root) == [("OPS", ql)] and not waits.waits(ql.root)


# -- prefetch --------------------------------------------------------------------------

def test_a_site_subscribes_to_its_rules_the_links_prefetch_and_what_a_dialler_pushes() -> None:
    link = LinkConfig("http://hub", prefetch=("planning",), names=("OPS/*",))
    sub = subscription([Selection(("sondes",))], link, "OPS", ())
    assert sub.selects(entry("s.nc", ("sondes",))) and sub.selects(entry("p.pdf", ("planning",), site="OPS"))
    assert not sub.selects(entry("p.pdf", ("planning",), site="BCO"))
    dialled = subscription([], None, "RV-Meteor", ("quicklook",))
    assert dialled.selects(entry("ql.png", ("quicklook",)))
    assert not dialled.selects(entry("ql.png", ("quicklook",), site="BCO"))


def test_prefetch_checks_other_sites_subscribed_entries_most_urgent_first() -> None:
    big = entry("big.nc", ("sondes",), size=10_000)
    small = entry("small.nc", ("sondes",), size=10)
    plan_doc = entry("plan.pdf", ("planning",), size=10**6)
    own = entry("own.nc", ("sondes",), site="OPS")
    done = entry("done.nc", ("sondes",))
    chosen = Subscription([Selection(("sondes", "planning"))])
    todo = to_complete([big, own, done, small, plan_doc, entry("raw", ("raw",))], "OPS", chosen, {done.root},
                       ("planning", "sondes"))
    assert todo == [plan_doc, small, big]
    core = peer(options={"heads": {}, "essential": ["planning"]})
    rounds = [(big, Wants(shallow=[oid("b1")])), (plan_doc, Wants(deep=[plan_doc.root])), (small, Wants())]
    merged = by_priority(rounds, core.rank)
    assert [(p, site, w.shallow, w.deep) for p, site, w in merged] == [
        (Priority.ESSENTIAL, None, [], [plan_doc.root]), (Priority.BULK, None, [oid("b1")], [])]
    # asked of a hub for a third site's entries: grouped by that site, for the hub to fetch
    third = entry("far.nc", ("sondes",), site="RV-Merian")
    merged = by_priority([*rounds, (third, Wants(shallow=[oid("f1")]))], core.rank,
                         lambda e: e.site if e.site == "RV-Merian" else None)
    assert [(p, site, w.shallow) for p, site, w in merged] == [
        (Priority.ESSENTIAL, None, []), (Priority.BULK, None, [oid("b1")]), (Priority.BULK, "RV-Merian", [oid("f1")])]


def test_wants_go_in_batches_with_resume_points() -> None:
    core = peer()
    data = os.urandom(3 * PIECE)
    partial = ObjectId.of(data)
    core.partials.assemble(pieces(partial, RAW, None, data)[0])
    ids = [oid(str(i)) for i in range(2500)]
    actions = core.want(Wants(shallow=[partial, *ids], deep=[oid("root")]), Priority.BULK)
    wants = says(actions, "want")
    assert [len(w["ids"]) for w in wants] == [2000, 502]
    assert wants[0]["resume"] == {partial: [RAW, None, PIECE]} and wants[0]["class"] == "bulk"
    assert wants[1]["deep"] == [oid("root")] and oid("root") in core.deep_incoming


def test_an_object_followed_whole_is_answered_with_what_is_held_below() -> None:
    core = peer()
    core.receive({"type": "pushing", "roots": [oid("root")]})
    assert core.stored(oid("root")) and not core.stored(oid("root"))
    assert says(core.held_below([oid("a")]), "have") == [{"ids": [oid("a")]}]


# -- lazy reads ------------------------------------------------------------------------

def test_a_read_goes_to_the_holding_site_else_over_a_lazy_dialled_link() -> None:
    peers = {"OPS": "hub session", "BCO": "bco session"}
    lazy = {"hub session"}.__contains__
    assert route("BCO", peers, lazy) == "bco session"
    assert route("RV-Meteor", peers, lazy) == "hub session"
    assert route("RV-Meteor", {"BCO": "bco session"}, lazy) is None


def test_a_read_want_is_served_with_metadata_and_what_is_not_here_is_relayed() -> None:
    core = peer()
    here, there = oid("zarr manifest"), oid("elsewhere")
    core.outbox.sent.add(here)  # sent before, but the reader lacks it now
    actions = core.receive({"type": "want", "ids": [here, there], "class": "read", "site": "BCO", "hops": 2},
                           {here})
    assert core.outbox.queued[here].follow == Follow.METADATA
    assert core.outbox.queued[here].priority is Priority.READ
    (relay,) = [a for a in actions if isinstance(a, Relay)]
    assert relay.ids == [there] and relay.site == "BCO" and relay.hops == 2
    core.relayed(relay)
    assert there in core.outbox.queued


def test_a_span_want_follows_the_blocks_of_that_span() -> None:
    core = peer()
    record = oid("record")
    core.receive({"type": "want", "ids": [record], "spans": {record: [10, 20]}, "class": "read"}, {record})
    follow = core.outbox.queued[record].follow
    assert follow.kind is FollowKind.SPAN and follow.span == (10, 20)


def test_to_a_peer_taking_ranges_a_span_follows_only_the_blocks_it_needs_most_of() -> None:
    """A block with a tree root of which the span needs little is left to the peer to ask
    in parts; a block without one, or needed mostly, follows whole. A peer that did not
    say it takes ranges is sent every block, and may not ask for ranges."""
    blocks = (Block(oid("a"), 0, 1 << 20, "ab" * 32), Block(oid("b"), 1 << 20, 1 << 20, "cd" * 32),
              Block(oid("c"), 2 << 20, 1 << 20))
    record = FileRecord(3 << 20, blocks).to_bytes()
    span = ((1 << 20) - 100, (3 << 20) - 100)  # a's end, b's whole, most of c
    want = {"type": "want", "ids": [oid("record")], "spans": {oid("record"): list(span)}, "class": "read"}
    for ranges, followed in ((True, [oid("b"), oid("c")]), (False, [oid("a"), oid("b"), oid("c")])):
        core = Peer("OPS", None, {"heads": {}}, Partials(), ranges=ranges)
        core.receive(want, {oid("record")})
        assert [o for o, _ in core.outbox.queued[oid("record")].follow.after(record)] == followed
    asked = link_message(Say("ranges", {"ranges": [[oid("a"), 5, 10]]}).text())
    assert peer().ask_ranges([(oid("a"), 5, 10)]) == [Say("ranges", {"ranges": [[oid("a"), 5, 10]]})]
    assert Peer("OPS", None, {}, Partials(), ranges=True).receive(asked) == [Prove([(oid("a"), 5, 10, None)])]
    relayed = peer().ask_ranges([(oid("a"), 5, 10)], "BCO", oid("record"))  # of a third site's block
    assert relayed == [Say("ranges", {"ranges": [[oid("a"), 5, 10, oid("record")]], "site": "BCO"})]
    assert Peer("OPS", None, {}, Partials(), ranges=True).receive(link_message(relayed[0].text())) == [
        Prove([(oid("a"), 5, 10, oid("record"))], "BCO")]
    with pytest.raises(ValueError, match="did not say it takes them"):
        peer().receive(asked)


def test_a_want_asking_for_leaves_along_is_followed_by_the_runs_its_span_reads_in_parts() -> None:
    """A reader's want naming ``leaves`` (sent only to a peer that takes them, and only with
    spans) gets, after the record, the blocks it needs most of whole and the leaf runs of
    the others, as the reader would ask for them, naming the site to relay them from; a
    want without it gets the blocks only, as before."""
    blocks = (Block(oid("a"), 0, 1 << 20, "ab" * 32), Block(oid("b"), 1 << 20, 1 << 20, "cd" * 32),
              Block(oid("c"), 2 << 20, 1 << 20, "ef" * 32))
    record = FileRecord(3 << 20, blocks).to_bytes()
    span = ((1 << 20) - 100, (2 << 20) + 40_000)  # a's last leaf, b whole, c's first three leaves
    wants = Wants(shallow=[oid("record")], spans={oid("record"): span})
    for takes, along in ((True, True), (False, False)):
        asker = Peer("OPS", None, {"heads": {}}, Partials(), ranges=True, leaves=takes)
        (said,) = asker.want(wants, Priority.READ, "RV-Meteor", leaves=True)
        assert said.body.get("leaves", False) is along
        assert "leaves" not in asker.want(Wants(shallow=[oid("x")]), Priority.READ, leaves=True)[0].body
        holder = Peer("RV-Meteor", None, {"heads": {}}, Partials(), ranges=True, leaves=True)
        holder.receive(link_message(said.text()), {oid("record")})
        after = holder.outbox.queued[oid("record")].follow.after(record)
        runs = [(o, f.span, f.site) for o, f in after if f.kind is FollowKind.LEAVES]
        assert [o for o, f in after if f.kind is not FollowKind.LEAVES] == [oid("b")]
        leaf = hashtree.LEAF
        assert runs == ([(oid("a"), ((1 << 20) - leaf, 1 << 20), "RV-Meteor"), (oid("c"), (0, 3 * leaf), "RV-Meteor")]
                        if along else [])


def test_what_follows_an_object_is_found_from_its_bytes() -> None:
    meta, chunk, record = oid("zarr.json"), oid("chunk"), oid("record")
    manifest = Manifest("zarr", {"zarr.json": Ref(meta, 10), "t/c/0": Ref(chunk, 100),
                                 "big/c/0": Ref(record, 9 << 20, record=True)}).to_bytes()
    assert Follow.METADATA.after(manifest) == [(meta, Follow.NOTHING)]
    assert sorted(Follow.ALL.after(manifest)) == sorted([(meta, Follow.NOTHING), (chunk, Follow.NOTHING),
                                                         (record, Follow.ALL)])
    assert Follow.NOTHING.after(manifest) == [] and Follow.ALL.after(b"plain bytes") == []


# -- messages and pieces ---------------------------------------------------------------

def commits(site: str, seqs: range) -> list[Commit]:
    return [Commit(site, s, None, "", (), "", json.dumps({"site": site, "seq": s}).encode()) for s in seqs]


def test_commits_go_once_in_order_and_only_once_the_peer_said_what_it_has() -> None:
    assert peer(options={}).behind({"RV-Meteor": 3}) == {}
    core = peer(options={"heads": {"RV-Meteor": 1}})
    assert core.behind({"RV-Meteor": 3, "OPS": 5, "BCO": 0}) == {"RV-Meteor": 1}  # never its own
    sent = commits("RV-Meteor", range(2, 4))
    (batch,) = core.send_commits(sent)
    assert batch.body == {"raws": [c.raw.decode() for c in sent]}
    assert core.behind({"RV-Meteor": 3}) == {}


def test_a_peer_holding_nothing_of_a_log_is_offered_its_checkpoint_and_then_only_what_follows() -> None:
    core = Peer("MPI", None, {"heads": {"BCO": 4}}, Partials(), checkpoints=True)
    heads = {"OPS": 2502, "BCO": 9, "RV-Meteor": 12}
    behind = core.behind(heads)
    assert core.to_offer(behind) == ["OPS", "RV-Meteor"]  # BCO's log is held there in part
    ref = CheckpointRef(2500, oid("checkpoint"), 4096)
    (offer,) = core.offer({"OPS": ref})  # none of RV-Meteor's log is held here
    assert offer == Say("checkpoint", {"site": "OPS", "seq": 2500, "root": ref.root, "size": 4096})
    assert link_message(offer.text())["seq"] == 2500
    assert core.behind(heads) == {"BCO": 4, "RV-Meteor": 0}  # OPS's commits wait for the answer
    assert core.to_offer(core.behind(heads)) == ["RV-Meteor"] and core.offer({"OPS": ref}) == []
    assert core.receive({"type": "heads", "heads": {"BCO": 9}}) == []
    assert core.behind(heads) == {"RV-Meteor": 0}
    assert core.receive({"type": "heads", "heads": {"OPS": 2500}}) == [CatchUp()]
    assert core.behind(heads) == {"OPS": 2500, "RV-Meteor": 0}
    core.send_commits(commits("OPS", range(2501, 2503)))
    assert core.behind(heads) == {"RV-Meteor": 0}


def test_a_refused_checkpoint_is_followed_by_every_commit_and_not_offered_again() -> None:
    core = Peer("MPI", None, {"heads": {}}, Partials(), checkpoints=True)
    core.offer({"OPS": CheckpointRef(1000, oid("c"), 10)})
    assert core.receive({"type": "heads", "heads": {"OPS": 0}}) == [CatchUp()]
    assert core.behind({"OPS": 1500}) == {"OPS": 0} and core.to_offer({"OPS": 0}) == []


def test_a_peer_of_an_older_version_is_never_offered_a_checkpoint() -> None:
    assert peer().to_offer({"OPS": 0}) == []
    assert handshake.takes_checkpoints(handshake.dial_headers("BCO", handshake.nonce()))
    assert handshake.takes_checkpoints(handshake.reply_headers("OPS", handshake.nonce()))
    assert not handshake.takes_checkpoints({"X-NT-Site": "OPS"})


def test_an_offered_checkpoint_is_taken_once_and_answered_with_how_far_the_log_got() -> None:
    core = peer()
    ref = CheckpointRef(2500, oid("checkpoint"), 4096)
    body = link_message(Say("checkpoint", {"site": "OPS", **ref.to_json()}).text())
    assert core.receive(body) == [Join("OPS", ref)]
    assert core.receive(body) == []  # one start per log at a time
    assert core.joined("OPS", 2500) == [Say("heads", {"heads": {"OPS": 2500}})]
    assert core.receive(body) == [Join("OPS", ref)]


@pytest.mark.parametrize("body", [
    {"site": "OPS", "seq": 0, "root": "a" * 64, "size": 10},
    {"site": "OPS", "seq": 5, "root": "a" * 64, "size": 1 << 40},  # over the largest checkpoint read
    {"site": "../x", "seq": 5, "root": "a" * 64, "size": 10},
    {"site": "OPS", "seq": 5, "root": "a" * 64, "size": 10, "entries": []},
    {"site": "OPS", "seq": 5, "root": "A" * 64, "size": 10},
])
def test_a_malformed_checkpoint_offer_is_refused(body: dict) -> None:
    with pytest.raises(BadInput):
        link_message(json.dumps({"type": "checkpoint", **body}))


def test_commits_received_are_not_echoed_and_are_kept() -> None:
    core = peer()
    raw = json.dumps({"site": "BCO", "seq": 4})
    (receive,) = core.receive({"type": "commits", "raws": [raw]})
    assert receive == Receive([raw.encode()]) and core.heads["BCO"] == 4
    assert core.behind({"BCO": 4}) == {}


def test_pieces_are_assembled_into_an_object_to_keep_and_a_held_one_is_declined() -> None:
    core = peer()
    data = os.urandom(2 * PIECE)
    first, last = pieces(ObjectId.of(data), RAW, None, data)
    assert says(core.piece(first, held=True), "have") == [{"ids": [first.oid]}]
    assert core.piece(last, held=True) == []
    assert core.piece(first, held=False) == []
    (keep,) = core.piece(last, held=False)
    assert keep == Keep(first.oid, RAW, data, None)


def test_lack_and_have_messages() -> None:
    core = peer()
    core.outbox.queue([oid("x")], Priority.BULK)
    assert core.receive({"type": "have", "ids": [oid("x")]}) == [] and not core.outbox.queued
    (lack,) = core.receive({"type": "lack", "ids": [oid("y")], "held_at": "BCO", "pending": True})
    assert lack == Lacking([oid("y")], "BCO", True)


def test_a_resumed_object_is_cut_from_where_the_peer_stopped() -> None:
    data = os.urandom(3 * PIECE)
    item = SendItem(ObjectId.of(data), Priority.BULK)
    core = peer(options={"heads": {}, "partials": {item.oid: [RAW, None, PIECE]}})
    base, resume = core.encoding_of(item)
    core.cut(item, data, base, RAW, data, resume)
    transfer = core.outbox.transfer(item)
    assert transfer is not None and transfer.outgoing.offset == PIECE
    assert core.encoding_of(replace(item)) == (None, None)  # a resume point is used once
