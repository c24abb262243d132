"""The ``/`` page in headless Chromium: it lists the published entries, and the topic
filter narrows them. A screenshot is kept in ``test-artifacts/site-page.png``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, start

import eurec4a_nt

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

PUBLISHED = {
    "sondes/2020-02-01T1045.nc": ["sondes"],
    "sondes/2020-02-01T1445.nc": ["sondes"],
    "quicklooks/radar-2020-02-01.png": ["quicklook"],
    "planning/flight-plan-RF07.pdf": ["planning"],
}


@pytest.mark.timeout(120)
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_page_lists_entries_and_filters_by_topic(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    proc = start(tmp_path / "sites", "RV-Meteor")
    try:
        for name, topics in PUBLISHED.items():
            path = tmp_path / name.rsplit("/", 1)[-1]
            path.write_bytes(os.urandom(20_000))
            eurec4a_nt.publish(path, name=name, topics=topics, description=f"about {name}",
                               server=proc.url, token=proc.token, progress=False)
        assert requests.get(proc.url + "/", timeout=TIMEOUT).headers["Content-Type"].startswith("text/html")

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(proc.url + "/", timeout=30_000)
                assert page.title().startswith("RV-Meteor")
                names = page.locator("#entries tr.entry td:nth-child(2) a").all_inner_texts()
                assert sorted(names) == sorted(PUBLISHED)
                assert "this site" in page.locator("#sites").inner_text()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "site-page.png"), full_page=True)

                page.select_option("select[name=topic]", "sondes")
                page.click("form button")
                page.wait_for_url("**/?topic=sondes*", timeout=30_000)
                names = page.locator("#entries tr.entry td:nth-child(2) a").all_inner_texts()
                assert sorted(names) == sorted(n for n, t in PUBLISHED.items() if "sondes" in t)
                assert all(cell == "here" for cell in
                           page.locator("#entries tr.entry td:last-child").all_inner_texts())

                page.fill("input[name=q]", "1445")
                page.click("form button")
                page.wait_for_url("**q=1445*", timeout=30_000)
                names = page.locator("#entries tr.entry td:nth-child(2) a").all_inner_texts()
                assert names == ["sondes/2020-02-01T1445.nc"]

                href = page.locator("#entries tr.entry td:nth-child(2) a").get_attribute("href")
                assert href == "/data/RV-Meteor/sondes/2020-02-01T1445.nc"
                assert requests.get(proc.url + href, timeout=TIMEOUT).status_code == 200
            finally:
                browser.close()
    finally:
        proc.stop()
    assert (ARTIFACTS / "site-page.png").stat().st_size > 10_000
