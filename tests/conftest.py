"""Fixtures shared by the whole suite: real site stores and real site servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.testing.s3 import moto_s3, s3_env


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep user config, caches and environment settings out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EUREC4A_NT_CACHE", str(home / "cache"))
    monkeypatch.setenv("EUREC4A_NT_CONFIG", str(home / "config.yaml"))
    for name in ("EUREC4A_NT_SERVER", "EUREC4A_NT_TOKEN", "EUREC4A_NT_STORE", "EUREC4A_NT_KEYRING"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> SiteStore:
    """A fresh local store of site RV-Meteor."""
    return SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SiteProcess]:
    """A running site server of RV-Meteor (subprocess on a free loopback port)."""
    make_sites(tmp_path, ["RV-Meteor"])
    proc = SiteProcess(tmp_path / "RV-Meteor").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """The test's ``tmp_path``, removed afterwards: for tests that write hundreds of MB."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port for the whole session."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def aws(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point every AWS client of this test and its subprocesses at the moto server."""
    env = s3_env(s3_endpoint)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
