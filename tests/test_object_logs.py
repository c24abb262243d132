"""A hub on object storage spanning processes (moto's S3 server on loopback): the site
log's append is a conditional write, so concurrent writers never fork it; servers on
one bucket see each other's objects and push each other's commits; a fork made
elsewhere (one key, two stores) is refused and shown."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from server_kit import listed

import eurec4a_nt as nt
from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.keyring import Keyring
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.testing.s3 import new_bucket

pytestmark = pytest.mark.timeout(240)

HUB = "MPI"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, check=False)


def init_hub(tmp_path: Path, endpoint: str) -> tuple[str, Path]:
    """``eurec4a-nt init MPI --store s3://...``: the local folder it names holds the key."""
    url = f"s3://{new_bucket(endpoint)}/hub"
    done = cli("init", HUB, "--store", url, "--local", str(tmp_path / "mpi-a"))
    assert done.returncode == 0, done.stderr
    assert f"local folder {tmp_path / 'mpi-a'}" in done.stdout
    assert not Path("s3:").exists() and (tmp_path / "mpi-a" / "keys" / f"{HUB}.key").exists()
    return url, tmp_path / "mpi-a"


def small(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(f"quicklook {name}\n".encode() * 20)
    return path


_PUBLISHER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import eurec4a_nt as nt

    store, work, who, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    work.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        path = work / f"{who}-{k}.txt"
        path.write_text(f"{who} {k}\\n")
        nt.publish(path, f"ql/{who}/{k}.txt", topics=["quicklook"], store=store, progress=False)
""")


def test_concurrent_publishers_on_one_bucket_make_one_log(aws: dict[str, str], s3_endpoint: str,
                                                          tmp_path: Path) -> None:
    """Four processes, two copies of the site's local folder, one bucket: every publish
    lands, in one chain, whoever lost a race signed again on the new head."""
    url, folder_a = init_hub(tmp_path, s3_endpoint)
    folder_b = tmp_path / "mpi-b"
    shutil.copytree(folder_a, folder_b)
    procs = [subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(folder), str(tmp_path / "work" / who),
                               who, "12"], env={**os.environ, **aws})
             for folder, who in ((folder_a, "a1"), (folder_a, "a2"), (folder_b, "b1"), (folder_b, "b2"))]
    try:
        assert [p.wait(180) for p in procs] == [0, 0, 0, 0]
    finally:
        for p in procs:
            p.kill()
    fresh = tmp_path / "mpi-c"  # a third machine: the key and config, no state
    shutil.copytree(folder_a, fresh, ignore=shutil.ignore_patterns("state"))
    store = SiteStore(fresh)
    log = store.log(HUB)
    assert log.seq == 48 and store.state(HUB).count("ql/") == 48
    assert log.verify(store.keyring) == []
    assert [c.seq for c in log] == list(range(1, 49))
    assert store.forks() == []
    keys = store.logs.fs.ls(f"{url.removeprefix('s3://')}/logs/{HUB}", refresh=True)  # type: ignore[attr-defined]
    assert len(keys) == 48  # one object per log position, none overwritten
    for who in ("a1", "b2"):
        assert store.entry(HUB, f"ql/{who}/11.txt").size == len(f"{who} 11\n")


def test_servers_on_one_bucket_serve_and_push_each_others_commits(aws: dict[str, str], s3_endpoint: str,
                                                                  tmp_path: Path) -> None:
    url, folder_a = init_hub(tmp_path, s3_endpoint)
    folder_b = tmp_path / "mpi-b"
    shutil.copytree(folder_a, folder_b)
    ship = SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")
    for folder in (folder_a, folder_b):
        SiteStore(folder).trust(ship.keyring)
    ship.trust(Keyring.load(folder_a / "keyring.yaml"))
    a = SiteProcess(folder_a, args=["--store", url, "--local", str(folder_a)], env=aws).start()
    b = SiteProcess(folder_b, env=aws).start()
    meteor = None
    try:
        meteor = SiteProcess(ship.path, args=["--link", b.url, "--prefetch", "quicklook"], env=aws).start()
        files = [small(tmp_path / "files", f"{k}.txt") for k in range(16)]

        def publish(k: int) -> None:
            via = a if k % 2 else b
            nt.publish(files[k], f"ql/{k}.txt", topics=["quicklook"], server=via.url, token=via.token,
                       progress=False)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(publish, range(16)))
        for server in (a, b):  # each sees every commit, whichever process made it
            wait_until(lambda s=server: s.status()["sites"][HUB]["seq"] == 16, 30, f"{server.url} caught up")
        # an object written through A is read through B (no stale listing of the bucket)
        answer = requests.get(f"{b.url}/data/{HUB}/ql/1.txt", timeout=10)
        assert answer.status_code == 200 and answer.content == files[1].read_bytes()
        # the ship, linked to B only, gets the entries published through A too
        wait_until(lambda: len(listed(meteor.url, HUB)) == 16, 60, "every entry at the ship")
        wait_until(lambda: requests.get(f"{meteor.url}/data/{HUB}/ql/3.txt", timeout=10).content
                   == files[3].read_bytes(), 30, "data of an entry published through A at the ship")
        assert a.status()["forks"] == [] and b.status()["forks"] == []
    finally:
        for proc in (meteor, a, b):
            if proc is not None:
                proc.stop()
    store = SiteStore(folder_b)
    assert store.log(HUB).verify(store.keyring) == []


def test_commands_name_a_store_on_s3_by_its_url_or_its_folder(aws: dict[str, str], s3_endpoint: str,
                                                                tmp_path: Path) -> None:
    """``init --store s3://...`` without ``--local`` makes ``site-cache`` in the working
    folder; ``publish`` and ``ls`` then take the URL, or the folder; elsewhere the URL
    is refused saying which folder to name, not taken for a folder called ``s3:``."""
    url = f"s3://{new_bucket(s3_endpoint)}/hub"
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    note = small(work, "a.txt")

    def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                              env={**os.environ, **aws}, timeout=60, check=False, cwd=folder)

    assert run(work, "init", HUB, "--store", url).returncode == 0
    for store in (url, "site-cache"):
        done = run(work, "publish", str(note), "--name", f"ql/{store[:2]}.txt", "--store", store, "-q")
        assert done.returncode == 0, done.stderr
    listed = run(work, "ls", HUB, "--store", url)
    assert listed.returncode == 0 and "ql/s3.txt" in listed.stdout and "ql/si.txt" in listed.stdout, listed
    refused = run(elsewhere, "ls", "--store", url)
    assert refused.returncode != 0 and "is not that of " + url in refused.stderr, refused.stderr
    assert "init" in refused.stderr and not (elsewhere / "s3:").exists()


def test_a_forked_log_is_refused_and_shown(tmp_path: Path) -> None:
    """One key in two stores (a copied folder) writes two histories; a hub that holds one
    refuses the other loudly: in its answer, its status, its page and its log."""
    first = SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")
    shutil.copytree(first.path, tmp_path / "copy")
    second = SiteStore(tmp_path / "copy")
    entry = nt.Entry("a.txt", "file", ObjectId.of(b"a"), 1, "text")
    first.commit([Change("put", "a.txt", entry)])
    first.commit([Change("put", "b.txt", replace(entry, name="b.txt"))])
    second.commit([Change("put", "a.txt", entry)])  # another time stamp: another commit 1
    second.commit([Change("remove", "a.txt")])
    hub = SiteStore.init(tmp_path / "OPS", "OPS")
    hub.trust(first.keyring)
    proc = SiteProcess(hub.path).start()
    try:
        headers = {"Authorization": f"Bearer {proc.token}"}
        post = requests.post(f"{proc.url}/logs", data=b"\n".join(c.raw for c in first.log("RV-Meteor")),
                             headers=headers, timeout=10)
        assert post.status_code == 200 and post.json()["added"] == ["RV-Meteor#1", "RV-Meteor#2"]
        other = b"\n".join(c.raw for c in second.log("RV-Meteor"))
        post = requests.post(f"{proc.url}/logs", data=other, headers=headers, timeout=10)
        assert post.status_code == 409 and "FORK" in post.json()["message"], post.text
        status = proc.status()
        assert [(f["site"], f["seq"]) for f in status["forks"]] == [("RV-Meteor", 1)]
        assert status["sites"]["RV-Meteor"]["forked"] is True
        assert status["sites"]["RV-Meteor"]["seq"] == 2  # the branch held is kept
        page = requests.get(proc.url + "/", timeout=10).text
        assert "FORKED LOG: RV-Meteor" in page
    finally:
        proc.stop()
    assert "FORK: RV-Meteor signed two different histories" in proc.log_path.read_text()
