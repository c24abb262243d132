"""fsck finds damaged objects and commits; a publish killed with SIGKILL at any moment
leaves a consistent store."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import eurec4a_nt as nt
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.entries import Entry
from eurec4a_nt.fsck import fsck
from eurec4a_nt.log import Change
from eurec4a_nt.manifests import Manifest, Ref
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.tree import walk

SITE = "RV-Meteor"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, check=False)


@pytest.mark.timeout(60)
def test_a_clean_store_passes(store: SiteStore, tmp_path: Path) -> None:
    nt.publish(sd.sonde(tmp_path / "s.nc", seed=1), "sondes/s.nc", store=store.path)
    nt.publish(sd.timeseries(seed=1, hours=3), "bco/met.zarr", store=store.path)
    report = fsck(store)
    assert report.ok and report.bad_objects == [] and report.missing == {}
    assert report.objects == len(list(store.objects.ids())) > 3
    out = run_cli("fsck", "--store", str(store.path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


@pytest.mark.timeout(60)
def test_a_flipped_byte_is_found_and_quarantined(store: SiteStore, tmp_path: Path) -> None:
    path = sd.raw_file(tmp_path / "raw.bin", size=5 << 20, seed=2)
    entry = nt.publish(path, "raw/lidar.bin", store=store.path)
    victim = FileRecord.from_bytes(store.objects.get(entry.root)).blocks[1].id
    where = Path(store.objects.local_path(victim) or "")
    data = bytearray(where.read_bytes())
    data[len(data) // 2] ^= 0x01
    where.write_bytes(bytes(data))

    out = run_cli("fsck", "--store", str(store.path), cwd=tmp_path)
    assert out.returncode == 1
    assert f"damaged object {victim}" in out.stdout
    assert "problems found" in out.stdout
    assert "Traceback" not in out.stderr
    assert not store.objects.has(victim)
    quarantined = list((store.path / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith(victim)
    assert quarantined[0].read_bytes() == bytes(data)
    # the entry now lacks an object of this site's own data: still reported, still failing
    report = fsck(SiteStore(store.path))
    assert report.bad_objects == []
    assert report.missing == {f"{SITE}/raw/lidar.bin": [victim]}
    assert not report.ok
    assert any(line.startswith(f"MISSING: {SITE}/raw/lidar.bin") for line in report.lines())
    # publishing the file again brings the object back and the store is whole
    nt.publish(path, "raw/lidar.bin", store=store.path)
    assert fsck(SiteStore(store.path)).ok


@pytest.mark.timeout(60)
def test_objects_missing_for_another_sites_entry_are_normal(store: SiteStore,
                                                            tmp_path: Path) -> None:
    ship = SiteStore.init(tmp_path / "ship", "RV-Merian")
    entry = nt.publish(sd.raw_file(tmp_path / "r.bin", size=3 << 20, seed=3), "raw/r.bin",
                       store=ship.path)
    store.trust(ship.keyring)
    store.receive(c.raw for c in ship.log("RV-Merian"))
    store.objects.put(ship.objects.get(entry.root))  # only the record, not the blocks
    report = fsck(store)
    assert report.ok
    assert set(report.missing) == {"RV-Merian/raw/r.bin"}
    assert any(line.startswith("not held: RV-Merian/raw/r.bin") for line in report.lines())


@pytest.mark.timeout(60)
def test_a_tampered_commit_fails_fsck_with_site_and_seq(store: SiteStore, tmp_path: Path) -> None:
    for k in range(3):
        (tmp_path / f"{k}.md").write_text(f"# {k}\n")
        nt.publish(tmp_path / f"{k}.md", f"notes/{k}.md", topics=["blog"], store=store.path)
    log = store.path / "logs" / f"{SITE}.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"topics":["blog"]', b'"topics":["planning"]', 2))
    out = run_cli("fsck", "--store", str(store.path), cwd=tmp_path)
    assert out.returncode == 1
    assert f"{SITE}#2" in out.stdout
    ls = run_cli("ls", "--store", str(store.path), cwd=tmp_path)
    assert ls.returncode != 0
    assert f"{SITE}#2" in ls.stderr and len(ls.stderr.strip().splitlines()) == 1
    assert "Traceback" not in ls.stderr


_PUBLISHER = textwrap.dedent("""
    import sys
    from eurec4a_nt.demokit import sampledata as sd
    from eurec4a_nt.api import publish

    store, work, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    for k in range(1000):
        path = sd.raw_file(f"{work}/raw-{run}-{k}.bin", size=50 << 20, seed=run * 1000 + k)
        publish(path, f"raw/run{run}/part{k}.bin", topics=["raw"], store=store, progress=False)
        print(f"published raw/run{run}/part{k}.bin", flush=True)
""")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_during_publish_leaves_a_consistent_store(store: SiteStore, scratch: Path) -> None:
    """15 publishers killed with SIGKILL at random moments: no damaged object, an intact
    log, every acknowledged publish present, every entry complete."""
    rng = random.Random(20200201)
    acknowledged: set[str] = set()
    work = scratch / "work"
    work.mkdir()
    for run in range(15):
        proc = subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(store.path), str(work),
                                 str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        acknowledged |= {line.split()[1] for line in out.splitlines() if line.startswith("published")}
        for leftover in work.iterdir():
            leftover.unlink()

        reopened = SiteStore(store.path)
        entries = reopened.entries(SITE)
        assert acknowledged <= set(entries)
        for entry in entries.values():
            absent = [n.id for n in walk(entry, reopened.objects) if not n.held]
            assert absent == [], f"{entry.name} is committed but lacks {len(absent)} objects"
    assert acknowledged, "no publish finished before its kill: the test proved nothing"
    final = SiteStore(store.path)
    referenced = {n.id for e in final.entries(SITE).values() for n in walk(e, final.objects)}
    assert set(final.objects.ids()) - referenced, "no kill landed inside a publish"
    report = fsck(final)
    assert report.bad_objects == [] and report.bad_commits == [] and report.missing == {}
    assert report.ok
    assert final.log(SITE).verify(final.keyring) == []
    assert final.log(SITE).seq == len(final.entries(SITE))  # one whole commit per publish
    # whatever a kill left at the end of the log file, the next commit appends cleanly
    seq = final.log(SITE).seq
    nt.remove(min(final.entries(SITE)), store=store.path)
    again = SiteStore(store.path)
    assert again.log(SITE).seq == seq + 1
    assert again.log(SITE).verify(again.keyring) == []
    assert (store.path / "logs" / f"{SITE}.jsonl").read_bytes().endswith(b"\n")


def test_a_manifest_giving_another_size_than_its_object_is_a_bad_entry(store: SiteStore) -> None:
    value = store.objects.put(b"abc")
    manifest = store.objects.put(Manifest("directory", {"a.txt": Ref(value, 5)}).to_bytes())
    store.commit([Change("put", "dir", Entry("dir", "directory", manifest, 5, "directory"))])
    report = fsck(store)
    assert not report.ok
    assert report.bad_entries == [f"{SITE}/dir: 'a.txt' has 3 bytes, but its manifest says 5"]
