"""Folders that publish themselves: ``eurec4a-nt watch`` against a real site server, and
a server's own ``watch:`` section, with files written slowly by a real writer process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, auth, start, wait_for

from eurec4a_nt.errors import BadInput
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.watch.folder import Settler
from eurec4a_nt.watch.rules import parse_rules

pytestmark = pytest.mark.timeout(180)

SETTLE = 2.0

#: Writes each file in 6 pieces 0.25 s apart, each piece in its own open (append mode),
#: so every piece ends in a close: only the settle time tells when a file is complete.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    folder = Path(sys.argv[1])
    for name in sys.argv[2:]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for piece in range(6):
            with open(path, "ab") as f:
                f.write((name + ":" + str(piece) + ";").encode() * 5000)
            time.sleep(0.25)
""")
FILES = ["a.nc", "day-2/b.nc", "ql.png"]


def expected(name: str) -> bytes:
    return b"".join((name + ":" + str(piece) + ";").encode() * 5000 for piece in range(6))


def write_slowly(folder: Path, names: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), *names])


def puts(store: Path, site: str) -> list[str]:
    """Names put in the site log, one per put, in order."""
    return [c.name for commit in SiteStore(store).log(site) for c in commit.changes if c.op == "put"]


def watch_cmd(folder: Path, url: str, token: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "eurec4a_nt", "watch", str(folder), "--prefix", "lidar/",
            "--topic", "lidar", "--topic-for", "*.png=quicklook", "--exclude", "*.log",
            "--settle", str(SETTLE), "--server", url, "--token", token, *extra]


def test_watched_folder_publishes_each_file_once_complete(tmp_path: Path) -> None:
    folder = tmp_path / "instrument"
    folder.mkdir()
    (folder / "old.nc").write_bytes(b"written before anyone watched")
    (folder / "notes.log").write_text("excluded")
    (folder / ".hidden.nc").write_text("hidden")
    server = start(tmp_path, "RV-Meteor")
    state = ["--state", str(tmp_path / "watch.sqlite")]
    watcher = subprocess.Popen(watch_cmd(folder, server.url, server.token, *state),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = write_slowly(folder, [*FILES, "x.nc.part"])
    try:
        assert writer.wait(TIMEOUT) == 0
        names = ["lidar/old.nc", *(f"lidar/{f}" for f in FILES)]
        wait_for(lambda: set(puts(server.store, "RV-Meteor")) >= set(names), 30, "files published")
        watcher.send_signal(signal.SIGTERM)
        _out, err = watcher.communicate(timeout=TIMEOUT)
        assert watcher.returncode == 0, err
        assert sorted(puts(server.store, "RV-Meteor")) == sorted(names)  # each once, nothing else
        for f in FILES:
            data = requests.get(f"{server.url}/data/RV-Meteor/lidar/{f}", timeout=TIMEOUT)
            assert data.content == expected(f)  # complete, never a half-written version
        entries = requests.get(f"{server.url}/api/sites/RV-Meteor/entries", timeout=TIMEOUT).json()
        topics = {e["name"]: e["topics"] for e in entries["entries"]}
        assert topics["lidar/ql.png"] == ["lidar", "quicklook"] and topics["lidar/a.nc"] == ["lidar"]

        # a restart publishes nothing twice; a touched file with the same bytes neither
        (folder / "a.nc").touch()
        once = subprocess.run(watch_cmd(folder, server.url, server.token, *state, "--once"),
                              capture_output=True, text=True, timeout=TIMEOUT, check=True)
        assert once.stdout.strip().endswith("published 0 file(s)")
        assert sorted(puts(server.store, "RV-Meteor")) == sorted(names)

        # a changed file is published again, once
        with open(folder / "a.nc", "ab") as f:
            f.write(b"one more record")
        once = subprocess.run(watch_cmd(folder, server.url, server.token, *state, "--once"),
                              capture_output=True, text=True, timeout=TIMEOUT, check=True)
        assert once.stdout.strip().endswith("published 1 file(s)")
        assert puts(server.store, "RV-Meteor").count("lidar/a.nc") == 2
    finally:
        writer.kill()
        watcher.kill()
        watcher.wait(TIMEOUT)
        server.stop()


def test_a_new_watch_of_a_published_folder_publishes_nothing_again(tmp_path: Path) -> None:
    """A watch with a fresh state over 150 files published before (more than are asked
    for one by one): it finds them committed and publishes none of them again."""
    import eurec4a_nt as nt

    folder = tmp_path / "instrument"
    folder.mkdir()
    for i in range(150):
        (folder / f"r{i:03d}.nc").write_bytes(f"record {i}".encode())
    server = start(tmp_path, "RV-Meteor")
    try:
        nt.publish(sorted(folder.iterdir()), name="lidar/", topics=["lidar"], server=server.url,
                   token=server.token, progress=False)
        before = puts(server.store, "RV-Meteor")
        assert len(before) == 150
        once = subprocess.run([sys.executable, "-m", "eurec4a_nt", "watch", str(folder), "--prefix", "lidar/",
                               "--topic", "lidar", "--settle", "0.1", "--server", server.url, "--token",
                               server.token, "--state", str(tmp_path / "fresh.sqlite"), "--once"],
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert once.returncode == 0, once.stderr
        assert once.stdout.strip().endswith("published 0 file(s)"), once.stdout + once.stderr
        assert puts(server.store, "RV-Meteor") == before
    finally:
        server.stop()


def test_server_watches_the_folders_of_its_config(tmp_path: Path) -> None:
    folder = tmp_path / "radar"
    folder.mkdir()
    config = tmp_path / "server.yaml"
    config.write_text(f"watch:\n  - dir: {folder}\n    prefix: radar/\n    topics: [radar]\n"
                      f"    include: ['*.nc']\n    settle: {SETTLE}\n    topics-by-pattern: {{'r2*': [quicklook]}}\n")
    server = start(tmp_path, "RV-Meteor", args=["--config", str(config)])
    writer = write_slowly(folder, ["r1.nc", "r2.nc", "skip.txt"])
    try:
        assert writer.wait(TIMEOUT) == 0
        wait_for(lambda: len(puts(server.store, "RV-Meteor")) >= 2, 30, "files published")
        assert sorted(puts(server.store, "RV-Meteor")) == ["radar/r1.nc", "radar/r2.nc"]
        data = requests.get(f"{server.url}/data/RV-Meteor/radar/r2.nc", timeout=TIMEOUT)
        assert data.content == expected("r2.nc")
        r2 = requests.get(f"{server.url}/api/sites/RV-Meteor/entries/radar/r2.nc", timeout=TIMEOUT).json()
        assert r2["entry"]["topics"] == ["quicklook", "radar"]
        status = requests.get(f"{server.url}/api/status", headers=auth(server), timeout=TIMEOUT).json()
        assert status["objects"]["count"] > 0  # counted by the server's index
        server.stop()
        server.start()  # restarted: nothing is published again
        write_slowly(folder, ["r3.nc"]).wait(TIMEOUT)
        wait_for(lambda: "radar/r3.nc" in puts(server.store, "RV-Meteor"), 30, "new file published")
        assert sorted(puts(server.store, "RV-Meteor")) == ["radar/r1.nc", "radar/r2.nc", "radar/r3.nc"]
    finally:
        writer.kill()
        server.stop()


def test_settler_waits_for_quiet_files() -> None:
    s = Settler(2.0)
    s.observe("a", 10, 1, now=0.0)
    s.observe("a", 20, 2, now=1.5)  # grew: its quiet period starts again
    s.observe("b", 5, 1, now=1.0)
    assert s.ready(3.0) == [("b", 5, 1)]
    s.observe("a", 20, 2, now=3.0)  # unchanged: still quiet since 1.5
    assert s.ready(3.5) == [("b", 5, 1), ("a", 20, 2)]


@pytest.mark.parametrize(("raw", "says"), [
    ([{"dir": "x", "topics": ["Bad"]}], "bad topic"),
    ([{"dir": "x", "prefix": "lidar"}], "must end with '/'"),
    ([{"dir": "x", "settle": -1}], "positive"),
    ([{"dir": "x", "name": "{nope}"}], "bad name template"),
    ([{"dir": "x", "colour": "red"}], "unknown field"),
    ([{"prefix": "x/"}], "missing required field"),
])
def test_bad_watch_rules_are_refused(raw: list[dict], says: str) -> None:
    with pytest.raises(BadInput, match=says):
        parse_rules(raw)
