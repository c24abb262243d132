"""Signed checkpoints: a site names the state at a seq in its log every so many commits;
a joining site starts from one (its signature checked) and fetches only what follows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eurec4a_nt import checkpoint as checkpoints
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadCommit
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.keyring import SiteKey
from eurec4a_nt.log import Change, make_commit
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(180)

SITE = "RV-Meteor"


def put(name: str) -> Change:
    return Change("put", name, Entry(name, "file", ObjectId.of(name.encode()), 1, "png", ("quicklook",)))


def long_log(store: SiteStore, n: int) -> None:
    """``n`` signed commits of one entry each, written in one go (as a long campaign
    leaves them), some replaced and removed later."""
    head, lines = None, []
    for k in range(n):
        change = put(f"ql/{k % (n - 50):06d}.png") if k % 7 else Change("remove", f"ql/{k - 1:06d}.png")
        commit = make_commit(store.key, SITE, k + 1, head, [change])
        head, lines = commit.id, [*lines, commit.raw]
    (store.path / "logs" / f"{SITE}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert store.log(SITE).refresh().seq == n


def test_every_so_many_commits_name_a_signed_checkpoint(store: SiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 10)
    for k in range(25):
        store.commit([put(f"ql/{k:03d}.png")])
    commits = list(store.log(SITE))
    assert [c.seq for c in commits if c.checkpoint] == [11, 21]
    ref = store.db.checkpoint(SITE)
    assert ref is not None and (ref.seq, commits[20].checkpoint) == (20, ref)
    checkpoint = checkpoints.parse_checkpoint(checkpoints.read_checkpoint(ref, store.objects), store.keyring)
    assert (checkpoint.seq, checkpoint.head) == (20, commits[19].id)
    assert [e.name for e in checkpoint.entries] == [f"ql/{k:03d}.png" for k in range(20)]
    assert store.log(SITE).verify(store.keyring) == []


def test_a_forged_checkpoint_is_refused(store: SiteStore, tmp_path: Path) -> None:
    long_log(store, 60)
    head, entries, previous = store.db.snapshot(SITE)
    other = SiteStore.init(tmp_path / "BCO", "BCO")
    other.trust(store.keyring)
    forged = checkpoints.make_checkpoint(SiteKey.generate(), SITE, head, entries[:3], previous)
    with pytest.raises(BadCommit, match="signature does not verify"):
        other.start_from(forged)
    assert other.log(SITE).seq == 0 and SITE not in other.sites()
    genuine = checkpoints.make_checkpoint(store.key, SITE, head, entries, previous)
    assert other.start_from(genuine)
    assert other.state(SITE).count() == store.state(SITE).count()


def test_a_joining_site_starts_at_the_checkpoint(tmp_path: Path) -> None:
    make_sites(tmp_path, [SITE, "MPI"])
    source = SiteStore(tmp_path / SITE)
    long_log(source, 2500)
    source.commit([put("ql/after-1.png")])  # names the checkpoint of seq 2500
    source.commit([Change("remove", "ql/000003.png")])
    assert source.db.checkpoint(SITE).seq == 2500
    with SiteProcess(source.path) as server:
        joining = tmp_path / "MPI"
        done = subprocess.run([sys.executable, "-m", "eurec4a_nt", "join", server.url, "--site", SITE,
                               "--store", str(joining)], capture_output=True, text=True, timeout=120,
                              env={**os.environ}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{SITE}: from its checkpoint at seq 2500, 2 commits fetched; seq 2502 held"
    mpi = SiteStore(joining)
    want = source.state(SITE)
    have = mpi.state(SITE)
    assert (have.seq, have.head, have.count()) == (want.seq, want.head, want.count())
    assert have.get("ql/000003.png") is None and have.get("ql/after-1.png") is not None
    assert have.previous.get("ql/000010.png") == want.previous.get("ql/000010.png")
    assert [c.seq for c in mpi.log(SITE)] == [2501, 2502]
    assert mpi.log(SITE).verify(mpi.keyring) == []
    assert len(mpi.folder(SITE, "ql/").entries) == want.count("ql/")  # catalogs see the checkpoint's entries
    for name in ("logs.sqlite", "logs.sqlite-wal", "logs.sqlite-shm"):  # a lost state is rebuilt
        (joining / "state" / name).unlink(missing_ok=True)
    again = SiteStore(joining).state(SITE)
    assert (again.seq, again.count(), again.base) == (2502, want.count(), 2500)


FAST = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)


def checkpointed_log(store: SiteStore, forged: bool = False) -> None:
    """A log of 2,502 commits whose last but one names the checkpoint of seq 2500
    (signed by another key if ``forged``)."""
    long_log(store, 2500)
    if forged:
        head, entries, previous = store.db.snapshot(SITE)
        raw = checkpoints.make_checkpoint(SiteKey.generate(), SITE, head, entries[:3], previous)
        store.log(SITE).commit(store.key, [put("ql/after-1.png")],
                               checkpoints.store_checkpoint(raw, 2500, store.objects))
    else:
        store.commit([put("ql/after-1.png")])
    store.commit([Change("remove", "ql/000003.png")])
    assert store.db.checkpoint(SITE).seq == 2500


def linked_newcomer(root: Path, forged: bool = False) -> Campaign:
    """A hub holding its log of 2,502 commits (see :func:`checkpointed_log`) and a new
    site, MPI, linking to it."""
    campaign = Campaign(root, SITE, {"MPI": Remote(FAST)})
    checkpointed_log(SiteStore(root / SITE), forged)
    return campaign


def caught_up(campaign: Campaign) -> dict:
    """Wait until MPI holds the hub's log to its end; the bytes the hub sent it."""
    mpi = campaign.sites["MPI"]
    wait_until(lambda: mpi.status()["sites"].get(SITE, {}).get("seq") == 2502, 120, "MPI caught up")
    return campaign.links["MPI"].stats


def test_a_site_linking_to_a_hub_starts_at_its_checkpoint(tmp_path: Path) -> None:
    with linked_newcomer(tmp_path) as campaign:
        caught_up(campaign)
    mpi = SiteStore(tmp_path / "MPI")
    want, have = SiteStore(tmp_path / SITE).state(SITE), mpi.state(SITE)
    assert (have.seq, have.head, have.count(), have.base) == (want.seq, want.head, want.count(), 2500)
    assert [c.seq for c in mpi.log(SITE)] == [2501, 2502]  # the only commits that crossed
    assert have.get("ql/000003.png") is None and have.get("ql/after-1.png") is not None
    assert have.previous.get("ql/000010.png") == want.previous.get("ql/000010.png")
    assert mpi.log(SITE).verify(mpi.keyring) == []
    assert "started the log of RV-Meteor at its checkpoint of seq 2500" in (tmp_path / "MPI.log").read_text()


def test_a_forged_checkpoint_offered_over_a_link_is_refused_and_every_commit_taken(tmp_path: Path) -> None:
    with linked_newcomer(tmp_path, forged=True) as campaign:
        caught_up(campaign)
    mpi = SiteStore(tmp_path / "MPI")
    want, have = SiteStore(tmp_path / SITE).state(SITE), mpi.state(SITE)
    assert (have.seq, have.head, have.count(), have.base) == (want.seq, want.head, want.count(), 0)
    assert [c.seq for c in mpi.log(SITE)] == list(range(1, 2503))
    assert not list((tmp_path / "MPI" / "logs").glob("*.base"))
    assert "refused the checkpoint of RV-Meteor at seq 2500" in (tmp_path / "MPI.log").read_text()


def test_a_hub_relays_the_checkpoint_of_a_ship_linked_to_it(tmp_path: Path) -> None:
    campaign = Campaign(tmp_path, "OPS", {SITE: Remote(FAST), "MPI": Remote(FAST)})
    ship = SiteStore(tmp_path / SITE)
    checkpointed_log(ship)
    # the hub took the ship's log commit by commit: it knows the checkpoint, not its objects
    (tmp_path / "OPS" / "logs" / f"{SITE}.jsonl").write_bytes((ship.path / "logs" / f"{SITE}.jsonl").read_bytes())
    assert SiteStore(tmp_path / "OPS").checkpoint(SITE) is None
    try:
        campaign.hub.start()
        campaign.start_remote(SITE)
        wait_until(lambda: campaign.connected(SITE), 20, "the ship linked")
        campaign.start_remote("MPI")
        caught_up(campaign)
    finally:
        campaign.stop()
    mpi = SiteStore(tmp_path / "MPI")
    have, want = mpi.state(SITE), ship.state(SITE)
    assert (have.seq, have.head, have.count(), have.base) == (want.seq, want.head, want.count(), 2500)
    assert [c.seq for c in mpi.log(SITE)] == [2501, 2502]
    assert SiteStore(tmp_path / "OPS").checkpoint(SITE) is not None  # kept by the hub on the way


def test_a_hub_holding_a_checkpoints_record_but_not_its_blocks_does_not_offer_it(tmp_path: Path) -> None:
    """The hub kept the checkpoint's file record on the way but not its blocks (the ship
    dropped meanwhile), and the ship is offline: the hub offers no checkpoint it cannot
    serve; the newcomer takes every commit without a failed fetch."""
    campaign = Campaign(tmp_path, "OPS", {SITE: Remote(FAST), "MPI": Remote(FAST)})
    ship = SiteStore(tmp_path / SITE)
    checkpointed_log(ship)
    (tmp_path / "OPS" / "logs" / f"{SITE}.jsonl").write_bytes((ship.path / "logs" / f"{SITE}.jsonl").read_bytes())
    hub = SiteStore(tmp_path / "OPS")
    root = ship.db.checkpoint(SITE).root
    hub.objects.put(ship.objects.get(root), root)
    assert hub.checkpoint(SITE) is None  # its blocks are not here
    try:
        campaign.hub.start()
        campaign.start_remote("MPI")
        caught_up(campaign)
    finally:
        campaign.stop()
    mpi = SiteStore(tmp_path / "MPI")
    assert [c.seq for c in mpi.log(SITE)] == list(range(1, 2503))
    assert "refused the checkpoint" not in (tmp_path / "MPI.log").read_text()
