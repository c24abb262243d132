"""Settings that cannot be mistyped: every config file, links file, keyring and option
is parsed strictly; a wrong one stops the command with the key named, nothing starts."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_error, start

from eurec4a_nt.errors import BadInput
from eurec4a_nt.server.blocks import READ_AHEAD
from eurec4a_nt.server.run import add_arguments, config_from
from eurec4a_nt.settings import BODY_TIMEOUT, HEAD_TIMEOUT, LinksFile, ServerSettings, load, parse
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={**os.environ, **(env or {})}, check=False)


# (file name, its text, the command, what the one error line must say)
MISTYPED = [
    ("c.yaml", "read_token: true\n", ["serve", "--config", "c.yaml"],
     "unknown key 'read_token' (did you mean 'read-token'?)"),
    ("c.yaml", 'read-token: "yes"\n', ["serve", "--config", "c.yaml"], "'read-token': Expected `bool`"),
    ("c.yaml", "cache-cap: lots\n", ["serve", "--config", "c.yaml"], "'cache-cap': bad size 'lots'"),
    ("c.yaml", "port: 99999\n", ["serve", "--config", "c.yaml"], "port 99999 is out of range"),
    ("c.yaml", "read-ahead: 4GB\n", ["serve", "--config", "c.yaml"], "read-ahead 4000000000 bytes is out of range"),
    ("c.yaml", "direct-reads-expiry: 0\n", ["serve", "--config", "c.yaml"],
     "direct-reads-expiry 0 s is out of range: use 1 to 604800 seconds"),
    ("c.yaml", "- a list\n", ["serve", "--config", "c.yaml"], "must be a mapping"),
    ("l.yaml", 'links:\n  - url: http://ops:8047\n    lazy: "false"\n', ["serve", "--links", "l.yaml"],
     "'links[0].lazy': Expected `bool`, got `str` (write true or false, without quotes)"),
    ("l.yaml", "links:\n  - url: http://ops:8047\n    rate: {up: 250KB, dwn: 1MB}\n",
     ["serve", "--links", "l.yaml"], "unknown key 'links[0].rate.dwn' (did you mean 'down'?)"),
    ("l.yaml", "links:\n  - url: http://ops:8047\n    budget: 5XB\n", ["serve", "--links", "l.yaml"],
     "'links[0].budget': bad size '5XB'"),
    ("l.yaml", "links:\n  - url: http://ops:8047\n    pusch: [sondes]\n", ["serve", "--links", "l.yaml"],
     "unknown key 'links[0].pusch' (did you mean 'push'?)"),
    ("l.yaml", "links:\n  - url: ops:8047\n", ["serve", "--links", "l.yaml"], "write http://HOST:PORT"),
    ("l.yaml", "links:\n  - push: [sondes]\n", ["serve", "--links", "l.yaml"], "missing required field `url`"),
    ("c.yaml", "links:\n  - url: http://ops:8047\n    compress: 1\n", ["serve", "--config", "c.yaml"],
     "'links[0].compress': Expected `bool`"),
    ("k.yaml", "sites:\n  OPS:\n    public-key: ed25519:x\n", ["keyring", "--import", "k.yaml"],
     "did you mean 'public_key'?"),
    ("cfg.yaml", "sever: http://ops:8047\n", ["ls"], "unknown key 'sever' (did you mean 'server'?)"),
    (None, "", ["serve", "--keyring", "absent.yaml"], "--keyring absent.yaml: no such file"),
    (None, "", ["serve", "--config", "absent.yaml"], "--config absent.yaml: no such file"),
    (None, "", ["serve", "--links", "absent.yaml"], "--links absent.yaml: no such file"),
    (None, "", ["keyring", "--import", "absent.yaml"], "keyring absent.yaml: no such file"),
    (None, "", ["serve", "--cache-cap", "lots"], "'--cache-cap': bad size 'lots'"),
    (None, "", ["serve", "--link", "ftp://ops"], "--link: url 'ftp://ops' is not a site server URL"),
    (None, "", ["serve", "--link", "http://ops:8047", "--push", "Sondes"], "push: bad topic 'Sondes'"),
    (None, "", ["serve", "--pin", "Raw Data"], "bad topic 'Raw Data'"),
    (None, "", ["serve", "--read-ahead", "100KB"], "read-ahead 100000 bytes is out of range: use 1MiB to 1GiB"),
    (None, "", ["serve", "--head-timeout", "0"], "head-timeout 0 s is out of range: use 1 to 3600 seconds"),
    ("c.yaml", "body-timeout: 86400\n", ["serve", "--config", "c.yaml"],
     "body-timeout 86400 s is out of range: use 1 to 3600 seconds"),
]


@pytest.mark.parametrize(("name", "text", "args", "says"), MISTYPED,
                         ids=[f"{a[0]}-{i}" for i, (_, _, a, _) in enumerate(MISTYPED)])
def test_a_mistyped_setting_is_refused_with_its_key(tmp_path: Path, name: str | None, text: str,
                                                    args: list[str], says: str) -> None:
    store = tmp_path / "site-cache"
    SiteStore.init(store, "OPS")
    keyring_before = (store / "keyring.yaml").read_text()
    if name:
        (tmp_path / name).write_text(text)
    out = run(*args, "--store", str(store), cwd=tmp_path, env={"EUREC4A_NT_CONFIG": str(tmp_path / "cfg.yaml")})
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith(f"eurec4a-nt {args[0]}: ") and says in lines[0], lines[0]
    assert out.stdout == ""  # no server started, nothing listed
    assert (store / "keyring.yaml").read_text() == keyring_before


def test_the_campaign_keyring_from_the_environment_must_exist(tmp_path: Path) -> None:
    SiteStore.init(tmp_path / "site-cache", "OPS")
    out = run("serve", "--store", "site-cache", cwd=tmp_path, env={"EUREC4A_NT_KEYRING": "gone.yaml"})
    assert out.returncode == 2 and "EUREC4A_NT_KEYRING gone.yaml: no such file" in out.stderr


@pytest.mark.timeout(60)
def test_read_token_in_the_config_file_closes_reads(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("read-token: true\npin: [planning]\n")
    proc = start(tmp_path / "sites", "OPS", args=["--config", str(config)])
    try:
        assert_error(requests.get(proc.url + "/api/sites", timeout=TIMEOUT), 401, "unauthorized")
        r = requests.get(proc.url + "/api/sites", headers={"Authorization": f"Bearer {proc.token}"},
                         timeout=TIMEOUT)
        assert r.status_code == 200 and list(r.json()["sites"]) == ["OPS"]
    finally:
        proc.stop()


def test_options_override_the_file_and_sizes_parse(tmp_path: Path) -> None:
    (tmp_path / "l.yaml").write_text(
        "links:\n  - url: http://ops:8047/\n    rate: {up: 250KB, down: 1 MiB}\n    budget: 500MB\n"
        "    lazy: false\n    push: [sondes]\n")
    links = load(tmp_path / "l.yaml", LinksFile, "--links").links
    config = links[0].config()
    assert (config.url, config.up_rate, config.down_rate, config.budget, config.lazy, config.push) == \
        ("http://ops:8047", 250_000, 1 << 20, 500_000_000, False, ("sondes",))
    settings = parse({"port": 9000, "read-token": True, "cache-cap": "2GB"}, ServerSettings, "--config")
    assert (settings.port, settings.read_token, settings.cache_cap, settings.host) == \
        (9000, True, 2_000_000_000, "127.0.0.1")
    with pytest.raises(BadInput, match="'cache-cap': bad size"):
        parse({"cache-cap": True}, ServerSettings, "--config")


def test_read_ahead_direct_reads_and_timeouts_from_options_and_the_file(tmp_path: Path) -> None:
    store = tmp_path / "site-cache"
    SiteStore.init(store, "OPS")
    (tmp_path / "c.yaml").write_text("read-ahead: 64MiB\ndirect-reads: true\ncache-cap: 2GB\nbody-timeout: 300\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = config_from(parser.parse_args(["--store", str(store)]))
    assert (default.read_ahead, default.direct_reads) == (READ_AHEAD, None)
    assert (default.head_timeout, default.body_timeout) == (HEAD_TIMEOUT, BODY_TIMEOUT)
    config = config_from(parser.parse_args(["--store", str(store), "--config", str(tmp_path / "c.yaml"),
                                            "--direct-reads-expiry", "60", "--head-timeout", "30"]))
    assert (config.read_ahead, config.direct_reads, config.cache_cap) == (64 << 20, 60, 2_000_000_000)
    assert (config.head_timeout, config.body_timeout) == (30, 300)
