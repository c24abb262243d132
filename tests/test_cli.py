"""The ``eurec4a-nt`` command in real subprocesses (``python -m eurec4a_nt``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_kit import start

import eurec4a_nt as nt
from eurec4a_nt.cli import parser
from eurec4a_nt.client import SiteClient
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)


def nt_cmd(*args: str, cwd: Path, env: dict[str, str] | None = None,
           ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True,
                         text=True, timeout=60, cwd=cwd, env={**os.environ, **(env or {})},
                         check=False)
    if ok:
        assert out.returncode == 0, f"{args}: {out.stderr}"
    return out


def commands() -> list[list[str]]:
    """Every command and sub-command of the parser."""
    out = []
    sub = next(a for a in parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        out.append([name])
        for action in p._actions:
            if action.dest == "action":
                out += [[name, inner] for inner in action.choices]  # type: ignore[union-attr]
    return out


def test_every_command_has_help(tmp_path: Path) -> None:
    cmds = commands()
    assert {"init", "publish", "ls", "get", "log", "fsck", "remove"} <= {c[0] for c in cmds}
    procs = [(cmd, subprocess.Popen([sys.executable, "-m", "eurec4a_nt", *cmd, "--help"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=tmp_path))
             for cmd in [[], *cmds]]
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{cmd}: {err}"
        assert out.startswith(f"usage: {' '.join(['eurec4a-nt', *cmd])}"), out
        assert err == ""


def test_init_publish_ls_get_log_fsck(tmp_path: Path) -> None:
    store = str(tmp_path / "site-cache")
    out = nt_cmd("init", "RV-Meteor", "--store", store, "--url", "http://meteor:8047", cwd=tmp_path)
    assert "public_key: ed25519:" in out.stdout and "http://meteor:8047" in out.stdout
    sonde = sd.sonde(tmp_path / "sonde.nc", seed=1)
    out = nt_cmd("publish", str(sonde), "--name", "sondes/2020-02-01T1045.nc", "--topic", "sondes",
                 "--topic", "processed", "--description", "level 2", "--metadata",
                 '{"launch": "10:45"}', "--store", store, "-q", cwd=tmp_path)
    assert out.stdout.startswith("published RV-Meteor/sondes/2020-02-01T1045.nc (file, netcdf,")
    assert "topics=processed,sondes" in out.stdout
    post = sd.blog_markdown(tmp_path / "day-3", seed=2, images=1)
    nt_cmd("publish", str(post), "--name", "blog/day-3", "--topic", "blog", "--store", store,
           cwd=tmp_path)
    ql = sd.quicklook_png(tmp_path / "ql.png", seed=3)
    env = {"EUREC4A_NT_STORE": store}  # the store from the environment instead of --store
    out = nt_cmd("publish", str(ql), "--topic", "quicklook", cwd=tmp_path, env=env)
    assert "published RV-Meteor/ql.png (file, png," in out.stdout

    out = nt_cmd("ls", "--store", store, cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "RV-Meteor (3 entries)"
    assert [line.split()[0] for line in lines[1:]] == ["blog/day-3", "ql.png",
                                                      "sondes/2020-02-01T1045.nc"]
    out = nt_cmd("ls", "RV-Meteor", "--topic", "sondes", cwd=tmp_path, env=env)
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["sondes/2020-02-01T1045.nc"]

    nt_cmd("get", "RV-Meteor/sondes/2020-02-01T1045.nc", str(tmp_path / "copy.nc"), "--store",
           store, "-q", cwd=tmp_path)
    assert (tmp_path / "copy.nc").read_bytes() == sonde.read_bytes()
    nt_cmd("get", "nt://RV-Meteor/blog/day-3", str(tmp_path / "post-copy"), "--store", store,
           cwd=tmp_path)
    for name in ("index.md", "figure-1.png"):
        assert (tmp_path / "post-copy" / name).read_bytes() == (post / name).read_bytes()
    nt_cmd("get", "RV-Meteor/ql.png", cwd=tmp_path, env=env)  # default destination: the name
    assert (tmp_path / "ql.png").read_bytes() == ql.read_bytes()
    (tmp_path / "here").mkdir()
    for dest in ("here", "there/"):  # a folder, or one to make: the file goes in under its name
        nt_cmd("get", "RV-Meteor/ql.png", dest, cwd=tmp_path, env=env)
        assert (tmp_path / dest / "ql.png").read_bytes() == ql.read_bytes()
    assert not list(tmp_path.glob("*.part"))

    nt_cmd("remove", "ql.png", "--store", store, cwd=tmp_path)
    out = nt_cmd("log", "--store", store, cwd=tmp_path)
    rows = [line.split() for line in out.stdout.splitlines()]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("RV-Meteor#1", "put", "sondes/2020-02-01T1045.nc"), ("RV-Meteor#2", "put", "blog/day-3"),
        ("RV-Meteor#3", "put", "ql.png"), ("RV-Meteor#4", "remove", "ql.png")]
    out = nt_cmd("fsck", "--store", store, cwd=tmp_path)
    assert out.stdout.splitlines()[-1] == "ok"
    assert SiteStore(store).entry("RV-Meteor", "sondes/2020-02-01T1045.nc").metadata == \
        {"launch": "10:45"}


ERRORS = [
    (["publish", "{dir}/absent.nc", "--name", "x.nc"], "no such file or folder"),
    (["publish", "{file}", "--name", "../x"], "bad entry name"),
    (["publish", "{file}", "--name", "a//b"], "bad entry name"),
    (["publish", "{file}", "--name", "x", "--topic", "Sondes"], "bad topic"),
    (["publish", "{file}", "--name", "x", "--metadata", "{bad"], "--metadata is not valid JSON"),
    (["publish", "{file}", "--name", "x", "--metadata", '{"topics": 1}'], "reserved"),
    (["publish", "{file}", "--name", "x", "--metadata", "[1]"], "metadata must be a dict"),
    (["ls", "Nowhere"], "unknown site 'Nowhere'"),
    (["get", "RV-Meteor/absent.nc"], "no entry or file 'RV-Meteor/absent.nc'"),
    (["remove", "absent.nc"], "no entry 'absent.nc'"),
    (["init", "RV Meteor"], "bad site name"),
    (["init", "RV-Merian"], "already belongs to site RV-Meteor"),
    (["keyring", "--import", "{dir}/bad.yaml"], "not valid YAML"),
]


@pytest.mark.parametrize(("args", "says"), ERRORS, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _)
                                                        in enumerate(ERRORS)])
def test_errors_are_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    store = tmp_path / "site-cache"
    SiteStore.init(store, "RV-Meteor")
    (tmp_path / "f.md").write_text("# f\n")
    (tmp_path / "bad.yaml").write_text("sites: [unclosed\n")
    args = [a.replace("{dir}", str(tmp_path)).replace("{file}", str(tmp_path / "f.md"))
            for a in args]
    log_before = sorted((store / "logs").iterdir())
    out = nt_cmd(*args, "--store", str(store), cwd=tmp_path, ok=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"eurec4a-nt {args[0]}: ")
    assert says in lines[0]
    assert sorted((store / "logs").iterdir()) == log_before
    assert SiteStore(store).log("RV-Meteor").seq == 0


@pytest.mark.parametrize("cmd", [["ls"], ["log"], ["fsck"], ["publish", "x.md"]])
def test_no_store_here(tmp_path: Path, cmd: list[str]) -> None:
    (tmp_path / "x.md").write_text("x")
    out = nt_cmd(*cmd, "--store", str(tmp_path / "nowhere"), cwd=tmp_path, ok=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "no store at" in out.stderr and "eurec4a-nt init" in out.stderr
    assert not (tmp_path / "nowhere").exists()


def test_usage_errors_exit_non_zero(tmp_path: Path) -> None:
    out = nt_cmd(cwd=tmp_path, ok=False)
    assert out.returncode == 2 and "usage: eurec4a-nt" in out.stderr
    out = nt_cmd("publish", cwd=tmp_path, ok=False)
    assert out.returncode == 2 and "the following arguments are required: paths" in out.stderr
    assert "Traceback" not in out.stderr


def test_version_and_help_for_every_option(tmp_path: Path) -> None:
    from eurec4a_nt import __version__

    out = nt_cmd("--version", cwd=tmp_path)
    assert out.stdout.strip() == f"eurec4a-nt {__version__}"
    sub = next(a for a in parser()._actions if a.dest == "command")
    missing = []
    for cmd in commands():
        p = sub.choices[cmd[0]]  # type: ignore[index]
        if len(cmd) > 1:
            p = next(a for a in p._actions if a.dest == "action").choices[cmd[1]]  # type: ignore[union-attr]
        missing += [f"{' '.join(cmd)} {a.dest}" for a in p._actions
                    if not a.help and a.dest not in ("help", "action")]
        if not any(a.dest == "action" for a in p._actions):
            missing += [f"{' '.join(cmd)}: nothing to run"] * (p.get_default("func") is None)
    assert missing == []


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    """``--help`` answers without importing the server, the HTTP client or the science stack."""
    code = ("import sys\nfrom eurec4a_nt.cli import main\n"
            "for argv in (['--help'], ['serve', '--help'], ['publish', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = ('aiohttp', 'requests', 'cryptography', 'xarray', 'numpy', 'zarr', 'fsspec', 'msgspec')\n"
            "print('imported:', *[m for m in heavy if m in sys.modules], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, check=True)
    assert out.stdout.startswith("usage: eurec4a-nt")
    assert out.stderr.strip().splitlines()[-1] == "imported:", out.stderr


def test_without_a_server_the_advice_fits_a_laptop(tmp_path: Path) -> None:
    for cmd in (["ls"], ["status"], ["get", "RV-Meteor/x.nc"], ["prefetch", "--topic", "quicklook"]):
        out = nt_cmd(*cmd, cwd=tmp_path, ok=False)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "EUREC4A_NT_SERVER" in out.stderr and "--server URL" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []  # no site store made on the way


def test_network_errors_say_what_to_do_in_one_line(tmp_path: Path) -> None:
    from eurec4a_nt.demokit.sites import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for cmd in (["ls"], ["get", "RV-Meteor/x.nc"], ["status"], ["publish", __file__, "--name", "x.py"]):
        out = nt_cmd(*cmd, "--server", url, cwd=tmp_path, ok=False)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert f"cannot reach the site server at {url} (connection refused" in lines[0], lines[0]
        assert not any(word in lines[0] for word in ("urllib3", "HTTPConnectionPool", "Max retries"))
    out = nt_cmd("ls", "--server", "ops:8047", cwd=tmp_path, ok=False)
    assert "server 'ops:8047' is not a site server URL (write http://HOST:PORT)" in out.stderr


def test_a_reader_that_leaves_ends_the_output_quietly(tmp_path: Path) -> None:
    """``eurec4a-nt ls | head -1``: no 'Broken pipe' line and no warning at exit, only
    the exit status of a process whose reader left."""
    store = str(tmp_path / "site-cache")
    nt_cmd("init", "BCO", "--store", store, cwd=tmp_path)
    (tmp_path / "a.txt").write_text("a")
    nt_cmd("publish", str(tmp_path / "a.txt"), "--store", store, cwd=tmp_path)
    assert nt_cmd("ls", "--store", store, cwd=tmp_path).stdout.startswith("BCO (1 entry)\n")
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "eurec4a_nt", "ls", "--store", store], stdout=write,
                             stderr=subprocess.PIPE, text=True, timeout=60, cwd=tmp_path, check=False)
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


def test_ls_through_a_server_reads_only_the_page_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tmp_path / "ql"
    files.mkdir()
    for i in range(1500):
        (files / f"ql-{i:04d}.txt").write_text(f"quicklook {i}\n")
    proc = start(tmp_path / "sites", "BCO")
    try:
        nt.publish(sorted(files.iterdir()), "ql/", topics=["quicklook"], server=proc.url, token=proc.token,
                   progress=False)
        out = nt_cmd("ls", "BCO", "--server", proc.url, "--prefix", "ql/ql-14", "--after", "ql/ql-1410.txt",
                     "--topic", "quicklook", "--limit", "3", cwd=tmp_path).stdout.splitlines()
        assert out[0] == "BCO (1500 entries)" and [line.split()[0] for line in out[1:4]] == \
            ["ql/ql-1411.txt", "ql/ql-1412.txt", "ql/ql-1413.txt"] and out[4].startswith("  ... more after")
        asked: list[str] = []
        real_get = SiteClient._get
        monkeypatch.setattr(SiteClient, "_get", lambda self, path: asked.append(path) or real_get(self, path))
        page, total = SiteClient(proc.url).page("BCO", 1200, prefix="ql/")
        assert len(page) == 1200 and total == 1500 and page[-1].name == "ql/ql-1199.txt"
        assert len(asked) == 2, asked  # two pages of the catalog API, not every entry of the site
    finally:
        proc.stop()


def test_a_quiet_publish_of_many_files_is_one_line(tmp_path: Path) -> None:
    store = str(tmp_path / "site-cache")
    nt_cmd("init", "RV-Meteor", "--store", store, cwd=tmp_path)
    for i in range(25):
        (tmp_path / f"q{i:02d}.txt").write_text(f"quicklook {i}")
    out = nt_cmd("publish", *sorted(str(p) for p in tmp_path.glob("q*.txt")), "--name", "ql/", "-q",
                 "--store", store, cwd=tmp_path)
    assert out.stdout.strip().splitlines() == ["published 25 entries of RV-Meteor (290 B): ql/q00.txt ... ql/q24.txt"]

