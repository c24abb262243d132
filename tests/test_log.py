"""Site logs: signed append-only commits, their replay, and every way they can be tampered
with, forged or torn."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

import eurec4a_nt as nt
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadCommit, BadInput, Corrupt, NotFound
from eurec4a_nt.fsck import fsck
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.keyring import Keyring, KeyringSite, SiteKey
from eurec4a_nt.log import Change, SiteLog, make_commit, parse_commit
from eurec4a_nt.logfiles import FolderLogs
from eurec4a_nt.logstate import LogState
from eurec4a_nt.schema import canonical
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(60)

SITE = "RV-Meteor"


def entry(name: str, content: bytes = b"x", topics: tuple[str, ...] = ()) -> Entry:
    return Entry(name, "file", ObjectId.of(content), len(content), "binary", topics=topics)


def put(name: str, content: bytes = b"x", topics: tuple[str, ...] = ()) -> Change:
    return Change("put", name, entry(name, content, topics))


@pytest.fixture
def three(store: SiteStore) -> SiteStore:
    """A store whose log holds three commits."""
    store.commit([put("sondes/a.nc", b"a", ("sondes",))])
    store.commit([put("sondes/b.nc", b"b", ("sondes",)), put("ql/b.png", b"p", ("quicklook",))])
    store.commit([Change("remove", "sondes/a.nc")])
    return store


def log_path(store: SiteStore, site: str = SITE) -> Path:
    return store.path / "logs" / f"{site}.jsonl"


def rewrite_line(path: Path, seq: int, change: dict) -> None:
    """Alter commit ``seq`` in place, keeping it canonical JSON (a careful tamperer)."""
    lines = path.read_bytes().splitlines()
    body = json.loads(lines[seq - 1])
    body.update(change)
    lines[seq - 1] = canonical(body)
    path.write_bytes(b"\n".join(lines) + b"\n")


# -- commits and replay --------------------------------------------------------------------


def test_replay_gives_the_current_entries(three: SiteStore) -> None:
    state = SiteStore(three.path).state(SITE)
    assert state.seq == 3
    assert sorted(state.entries) == ["ql/b.png", "sondes/b.nc"]
    assert state.entries["ql/b.png"].topics == ("quicklook",)
    assert state.entries["ql/b.png"].site == SITE
    commits = list(three.log(SITE))
    assert [c.seq for c in commits] == [1, 2, 3]
    assert commits[0].parent is None
    assert [c.parent for c in commits[1:]] == [c.id for c in commits[:-1]]
    assert state.head == commits[-1].id
    assert three.log(SITE).verify(three.keyring) == []
    assert [c.seq for c in three.log(SITE).commits_after(1)] == [2, 3]
    assert [c.seq for c in three.log(SITE).commits_after(0, limit=2)] == [1, 2]


def test_log_lines_are_canonical_signed_json(three: SiteStore) -> None:
    for seq, line in enumerate(log_path(three).read_bytes().splitlines(), 1):
        body = json.loads(line)
        assert canonical(body) == line
        assert set(body) == {"site", "seq", "parent", "time", "changes", "signature"}
        assert (body["site"], body["seq"]) == (SITE, seq)
        assert body["time"].endswith("Z")


def test_an_empty_commit_is_refused(store: SiteStore) -> None:
    with pytest.raises(BadInput, match="nothing to commit"):
        store.commit([])
    assert store.log(SITE).seq == 0


def test_key_file_is_private_and_kept(store: SiteStore) -> None:
    key = store.path / "keys" / f"{SITE}.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = store.key.public_key
    SiteStore.init(store.path, SITE)
    assert SiteStore(store.path).key.public_key == public
    with pytest.raises(FileExistsError):
        SiteKey.generate().save(key)


def test_concurrent_committers_make_one_chain(store: SiteStore) -> None:
    """Committers in threads, each with its own SiteStore (own handle on the log file)."""
    errors: list[BaseException] = []

    def commit(k: int) -> None:
        try:
            mine = SiteStore(store.path)
            for j in range(5):
                mine.commit([put(f"w{k}/{j}", b"%d-%d" % (k, j))])
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    fresh = SiteStore(store.path)
    assert fresh.log(SITE).seq == 20
    assert len(fresh.entries(SITE)) == 20
    assert fresh.log(SITE).verify(fresh.keyring) == []


def test_a_torn_last_line_is_cut_off(three: SiteStore) -> None:
    path = log_path(three)
    good = path.read_bytes()
    path.write_bytes(good + b'{"changes":[{"op":"put","na')  # a crash in the middle of a write
    reopened = SiteStore(three.path)
    assert reopened.log(SITE).seq == 3
    report = fsck(reopened)
    assert (report.bad_commits, report.bad_objects) == ([], [])
    reopened.commit([put("after/crash")])
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4 and path.read_bytes().startswith(good)
    assert SiteStore(three.path).log(SITE).seq == 4


# -- tampering ---------------------------------------------------------------------------


def test_an_altered_middle_commit_is_detected(three: SiteStore) -> None:
    commit = json.loads(log_path(three).read_bytes().splitlines()[1])
    commit["changes"][0]["entry"]["topics"] = ["planning"]
    rewrite_line(log_path(three), 2, {"changes": commit["changes"]})
    with pytest.raises(BadCommit, match=f"{SITE}#3 does not follow {SITE}#2"):
        SiteStore(three.path).entries(SITE)
    report = fsck(SiteStore(three.path))
    assert not report.ok
    assert any(f"{SITE}#3" in line and f"{SITE}#2" in line for line in report.bad_commits)


def test_an_altered_last_commit_is_detected_by_its_signature(three: SiteStore) -> None:
    commit = json.loads(log_path(three).read_bytes().splitlines()[2])
    commit["changes"] = [{"op": "remove", "name": "sondes/b.nc"}]
    rewrite_line(log_path(three), 3, {"changes": commit["changes"]})
    reopened = SiteStore(three.path)
    problems = reopened.log(SITE).verify(reopened.keyring)
    assert len(problems) == 1 and f"{SITE}#3" in problems[0] and "signature" in problems[0]
    report = fsck(reopened)
    assert not report.ok
    assert any(f"{SITE}#3" in line for line in report.lines())


def test_a_clumsy_edit_is_reported_with_site_and_seq(three: SiteStore) -> None:
    """An edit that breaks the canonical form (e.g. by hand in an editor)."""
    path = log_path(three)
    path.write_bytes(path.read_bytes().replace(b'"topics":["sondes"]', b'"topics": ["raw"]', 1))
    with pytest.raises(Corrupt, match=f"log of {SITE} is damaged at seq 1"):
        SiteStore(three.path).entries(SITE)


def test_a_forged_commit_is_rejected_by_receive(three: SiteStore, tmp_path: Path) -> None:
    """A commit for RV-Meteor signed by another key, arriving at another site."""
    hub = SiteStore.init(tmp_path / "BCO", "BCO")
    hub.trust(three.keyring)
    added, rejected = hub.receive(c.raw for c in three.log(SITE))
    assert [c.seq for c in added] == [1, 2, 3] and rejected == []
    head = three.log(SITE).state.head
    forged = make_commit(SiteKey.generate(), SITE, 4, head, [put("sondes/fake.nc", b"fake")])
    added, rejected = hub.receive([forged.raw])
    assert added == []
    assert rejected == [f"commit {SITE}#4: its signature does not verify (forged or altered on the way)"]
    assert hub.log(SITE).seq == 3
    assert "sondes/fake.nc" not in hub.entries(SITE)
    # the real next commit still goes through
    real = three.commit([put("sondes/c.nc", b"c")])
    assert [c.seq for c in hub.receive([real.raw])[0]] == [4]


def test_receive_rejects_unknown_sites_gaps_and_rewrites(three: SiteStore, tmp_path: Path) -> None:
    hub = SiteStore.init(tmp_path / "BCO", "BCO")
    raws = [c.raw for c in three.log(SITE)]
    added, rejected = hub.receive(raws)  # RV-Meteor is not in the hub's keyring yet
    assert added == [] and len(rejected) == 1 and "not in the keyring" in rejected[0]
    hub.trust(three.keyring)
    added, rejected = hub.receive([raws[1], raws[2]])  # a gap: seq 1 missing
    assert added == [] and "out of order" in rejected[0]
    assert not log_path(hub).exists()  # a refused commit leaves no trace of its site
    assert hub.sites() == ["BCO"]
    added, rejected = hub.receive(raws)
    assert len(added) == 3 and rejected == []
    assert hub.receive(raws) == ([], [])  # idempotent
    # the site rewrites its history (a diverged log): refused, what is held stays
    other = make_commit(three.key, SITE, 3, list(three.log(SITE))[1].id, [put("x/y")])
    added, rejected = hub.receive([other.raw])
    assert added == [] and "differs from the one already held" in rejected[0]
    assert hub.log(SITE).commits_after(2)[0].raw == raws[2]


def test_receive_refuses_commits_claiming_to_be_this_site(three: SiteStore, tmp_path: Path) -> None:
    copy = SiteStore.init(tmp_path / "copy", "BCO")
    copy.trust(three.keyring)
    # a commit of the store's own site made elsewhere (same key stolen) is not appended
    own = make_commit(copy.key, "BCO", 1, None, [put("a")])
    added, rejected = copy.receive([own.raw])
    assert added == [] and "only this site writes its own log" in rejected[0]
    assert copy.log("BCO").seq == 0


def test_malformed_commits_are_refused() -> None:
    key = SiteKey.generate()
    good = make_commit(key, SITE, 1, None, [put("a")])
    body = json.loads(good.raw)
    bad = [
        b"not json",
        canonical({**body, "seq": 0}),
        canonical({**body, "seq": 2}),  # seq 2 needs a parent
        canonical({**body, "site": "bad site"}),
        canonical({**body, "changes": [{"op": "rename", "name": "a"}]}),
        canonical({**body, "changes": [{"op": "put", "name": "../a", "entry": body["changes"][0]["entry"]}]}),
        canonical({**body, "changes": [{"op": "put", "name": "b", "entry": body["changes"][0]["entry"]}]}),
        json.dumps(body, indent=1).encode(),  # not canonical
        canonical({k: v for k, v in body.items() if k != "signature"}),
    ]
    for raw in bad:
        with pytest.raises(BadCommit):
            parse_commit(raw)
    assert parse_commit(good.raw) == good


def test_site_log_refuses_commits_of_another_site(tmp_path: Path) -> None:
    key = SiteKey.generate()
    log = SiteLog(FolderLogs(tmp_path), LogState(tmp_path / "state.sqlite"), SITE)
    other = make_commit(key, "BCO", 1, None, [put("a")])
    with pytest.raises(BadCommit, match="does not belong"):
        log.append(other, None)
    keyring = Keyring({SITE: KeyringSite(SITE, SiteKey.generate().public_key)})
    mine = make_commit(key, SITE, 1, None, [put("a")])
    with pytest.raises(BadCommit, match="signature does not verify"):
        log.append(mine, keyring)
    assert log.seq == 0
    path = log.files.path(SITE)  # type: ignore[attr-defined]
    assert not path.exists() or path.read_bytes() == b""


# -- keyring -----------------------------------------------------------------------------


def test_keyring_round_trip_and_conflicts(tmp_path: Path) -> None:
    a, b = SiteKey.generate(), SiteKey.generate()
    ring = Keyring()
    ring.add(KeyringSite("RV-Meteor", a.public_key, ["http://meteor:8047"]))
    ring.add(KeyringSite("BCO", b.public_key))
    ring.add(KeyringSite("RV-Meteor", a.public_key, ["http://10.0.0.2:8047"]))
    with pytest.raises(BadInput, match="already in the keyring with another key"):
        ring.add(KeyringSite("RV-Meteor", b.public_key))
    ring.save(tmp_path / "keyring.yaml")
    loaded = Keyring.load(tmp_path / "keyring.yaml")
    assert loaded.sites["RV-Meteor"].urls == ["http://meteor:8047", "http://10.0.0.2:8047"]
    assert loaded.sites["BCO"].public_key == b.public_key
    assert Keyring.load(tmp_path / "absent.yaml").sites == {}
    (tmp_path / "bad.yaml").write_text("sites: [unclosed\n")
    with pytest.raises(BadInput, match="not valid YAML"):
        Keyring.load(tmp_path / "bad.yaml")
    (tmp_path / "nokey.yaml").write_text("sites:\n  BCO: {urls: []}\n")
    with pytest.raises(BadInput, match="missing required field `public_key`"):
        Keyring.load(tmp_path / "nokey.yaml")


def test_init_site_returns_the_keyring_line(tmp_path: Path) -> None:
    line = nt.init_site("HALO", store=tmp_path / "HALO", urls=["http://halo:8047"])
    assert line.name == "HALO" and line.public_key.startswith("ed25519:")
    text = "sites:\n" + line.to_yaml()
    (tmp_path / "campaign.yaml").write_text(text)
    assert Keyring.load(tmp_path / "campaign.yaml").sites["HALO"].public_key == line.public_key


def test_the_campaign_keyring_is_trusted(three: SiteStore, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = tmp_path / "catalogs" / "keyring.yaml"
    three.keyring.save(campaign)
    hub = SiteStore.init(tmp_path / "BCO", "BCO")
    assert hub.receive([c.raw for c in three.log(SITE)])[0] == []
    monkeypatch.setenv("EUREC4A_NT_KEYRING", str(campaign))
    hub = SiteStore(tmp_path / "BCO")
    assert len(hub.receive([c.raw for c in three.log(SITE)])[0]) == 3
    hub2 = SiteStore(tmp_path / "BCO", keyring=campaign)
    assert hub2.log(SITE).verify(hub2.keyring) == []


def test_a_store_without_a_site(tmp_path: Path) -> None:
    cache = SiteStore.open_or_create(tmp_path / "cache")
    assert cache.site is None and cache.sites() == []
    with pytest.raises(NotFound, match="eurec4a-nt init"):
        cache.commit([put("a")])
    with pytest.raises(NotFound, match="unknown site"):
        cache.entries("RV-Meteor")


# -- state in SQLite: the query API, and no replay ----------------------------------------


def test_state_query_api_pages_by_prefix(store: SiteStore) -> None:
    for k in range(3):
        store.commit([put(f"sondes/{k}/{j:04d}.nc", b"%d-%d" % (k, j), ("sondes",)) for j in range(700)])
    store.commit([put("ql/a.png", b"a", ("quicklook",)), Change("remove", "sondes/0/0000.nc")])
    state = SiteStore(store.path).state(SITE)
    assert (state.seq, state.count(), state.count("sondes/1/"), state.count("ql/")) == (4, 2100, 700, 1)
    assert state.get("sondes/0/0000.nc") is None and state.get("ql/a.png").topics == ("quicklook",)
    assert state.get("ql/a.png").site == SITE
    names, after = [], ""
    while page := state.list("sondes/2/", after, limit=300):
        names += [e.name for e in page]
        after = page[-1].name
    assert names == [f"sondes/2/{j:04d}.nc" for j in range(700)]
    assert [e.name for e in state.list("sondes/", "sondes/0/0698.nc", 3)] == [
        "sondes/0/0699.nc", "sondes/1/0000.nc", "sondes/1/0001.nc"]
    assert len(state.entries) == 2100 and "ql/a.png" in state.entries and "x" not in state.entries
    assert sum(1 for _ in state.entries.values()) == 2100


def test_opening_a_long_log_reads_only_what_is_new(store: SiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in range(30):
        store.commit([put(f"n/{k}", b"%d" % k)])
    import eurec4a_nt.log as log_module

    parsed: list[bytes] = []
    real = log_module.parse_commit
    monkeypatch.setattr(log_module, "parse_commit", lambda raw: parsed.append(raw) or real(raw))
    reopened = SiteStore(store.path)
    assert reopened.log(SITE).seq == 30 and reopened.entry(SITE, "n/7").name == "n/7"
    reopened.commit([put("n/new")])
    assert len(parsed) <= 2  # the new commit, made and read back; nothing replayed
    parsed.clear()
    (store.path / "state" / "logs.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (store.path / "state" / f"logs.sqlite{suffix}").unlink(missing_ok=True)
    rebuilt = SiteStore(store.path)
    assert rebuilt.log(SITE).seq == 31 and rebuilt.state(SITE).count() == 31
    assert len(parsed) == 31  # a lost state is rebuilt by one replay


def test_a_state_another_writer_moved_is_not_reset(store: SiteStore) -> None:
    """A writer that found the state stale resets it only if no one moved it since."""
    seen = store.db.head(SITE)
    SiteStore(store.path).commit([put("a.nc")])
    assert store.db.reset(SITE, seen) is False
    assert store.log(SITE).seq == 1 and len(store.entries(SITE)) == 1
