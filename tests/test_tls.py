"""Links and clients over TLS: a site server listening with its own certificate, and one
behind nginx terminating TLS. Servers are verified against the campaign's CA; catalogs
name https:// URLs; a client or link without the CA refuses to talk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, start

import eurec4a_nt as nt
from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.sites import SiteProcess, free_port, make_sites
from eurec4a_nt.testing.proxy import nginx_command, tls_proxy
from eurec4a_nt.testing.tls import Certificates, make_certificates


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    make_sites(tmp_path / "sites", ["OPS", "RV-Meteor"])
    return tmp_path / "sites"


@pytest.fixture
def running() -> Iterator[list[SiteProcess]]:
    procs: list[SiteProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def held(url: str, ca: Path, path: str) -> bool:
    site, name = path.split("/", 1)
    r = requests.get(f"{url}/api/sites/{site}/entries", params={"held": "1"}, timeout=TIMEOUT, verify=str(ca))
    return r.ok and any(e["name"] == name and e["held"] == e["objects"] for e in r.json()["entries"])


def ship_pushes(stores: Path, running: list[SiteProcess], hub_url: str, ca: Path | None, tmp_path: Path,
                ca_option: bool = False) -> Path:
    """Start RV-Meteor dialling ``hub_url`` (trusting ``ca``, given as ``--ca-file`` or in
    SSL_CERT_FILE), publish a quicklook there."""
    env = {"SSL_CERT_FILE": str(ca)} if ca and not ca_option else {}
    args = ["--ca-file", str(ca)] if ca and ca_option else []
    ship = start(stores, "RV-Meteor", args=["--link", hub_url, "--push", "quicklook", *args], env=env)
    running.append(ship)
    png = tmp_path / "ql.png"
    png.write_bytes(os.urandom(300_000))
    nt.publish(png, name="ql.png", topics=["quicklook"], server=ship.url, token=ship.token, progress=False)
    return png


@pytest.mark.timeout(120)
def test_a_link_over_native_tls(stores: Path, certs: Certificates, running: list[SiteProcess], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    hub = start(stores, "OPS", args=["--tls-cert", str(certs.cert), "--tls-key", str(certs.key)], ca=certs.ca)
    running.append(hub)
    assert hub.url.startswith("https://")
    png = ship_pushes(stores, running, hub.url, certs.ca, tmp_path, ca_option=True)
    wait_until(lambda: held(hub.url, certs.ca, "RV-Meteor/ql.png"), 60, "quicklook at the hub over TLS")
    got = requests.get(f"{hub.url}/data/RV-Meteor/ql.png", timeout=TIMEOUT, verify=str(certs.ca))
    assert got.content == png.read_bytes()
    catalog = requests.get(f"{hub.url}/catalog.yaml", timeout=TIMEOUT, verify=str(certs.ca)).text
    assert f"{hub.url}/sites/" in catalog and "http://" not in catalog
    # the Python client verifies against the CA named the standard way
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca))
    path = tmp_path / "plan.pdf"
    path.write_bytes(os.urandom(5000))
    nt.publish(path, name="plan.pdf", topics=["planning"], server=hub.url, token=hub.token, progress=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(requests.exceptions.SSLError):  # a client not trusting the campaign CA
        requests.get(hub.url + "/health", timeout=TIMEOUT)
    plain = f"http://127.0.0.1:{hub.port}/health"
    with pytest.raises(requests.RequestException):  # no plain HTTP on the TLS port
        requests.get(plain, timeout=TIMEOUT).raise_for_status()


@pytest.mark.timeout(120)
def test_a_link_refuses_a_server_it_cannot_verify(stores: Path, certs: Certificates, running: list[SiteProcess],
                                                 tmp_path: Path) -> None:
    hub = start(stores, "OPS", args=["--tls-cert", str(certs.cert), "--tls-key", str(certs.key)], ca=certs.ca)
    running.append(hub)
    ship_pushes(stores, running, hub.url, None, tmp_path)
    ship = running[-1]
    error = wait_until(lambda: ship.status()["links"][0]["error"], 30, "the link's error")
    assert "certificate" in error.lower(), error
    assert not held(hub.url, certs.ca, "RV-Meteor/ql.png")


@pytest.mark.timeout(120)
@pytest.mark.skipif(nginx_command() is None, reason="nginx is not installed (./run test installs it where it can)")
def test_a_link_through_nginx_terminating_tls(stores: Path, certs: Certificates, running: list[SiteProcess],
                                             tmp_path: Path) -> None:
    port = free_port()
    with tls_proxy(tmp_path / "nginx", f"http://127.0.0.1:{port}", certs.cert, certs.key) as public:
        hub = start(stores, "OPS", args=["--read-token", "--public-url", public, "--port", str(port)])
        running.append(hub)
        png = ship_pushes(stores, running, public, certs.ca, tmp_path)
        wait_until(lambda: _held_with_token(public, certs.ca, hub.token), 60, "quicklook at the hub through nginx")
        auth = {"Authorization": f"Bearer {hub.token}"}
        got = requests.get(f"{public}/data/RV-Meteor/ql.png", headers=auth, timeout=TIMEOUT, verify=str(certs.ca))
        assert got.content == png.read_bytes()
        catalog = requests.get(f"{public}/catalog.yaml", headers=auth, timeout=TIMEOUT, verify=str(certs.ca)).text
        assert f"{public}/sites/" in catalog


def _held_with_token(url: str, ca: Path, token: str) -> bool:
    r = requests.get(f"{url}/api/sites/RV-Meteor/entries", params={"held": "1"}, timeout=TIMEOUT, verify=str(ca),
                     headers={"Authorization": f"Bearer {token}"})
    return r.ok and any(e["name"] == "ql.png" and e["held"] == e["objects"] for e in r.json()["entries"])
