"""The catalog browser in a real JupyterLab, driven in Debian's headless Chromium.

JupyterLab runs on a free loopback port over a copy of ``notebooks/``; the test opens
``04-browse.ipynb``, runs all cells from the Run menu, checks that the widget lists the
entries the notebook published and that choosing a topic narrows them, and that
"open" shows the code. Screenshots go to ``test-artifacts/`` (``browser.png`` there is
the picture in the README: copy it to ``docs/`` when the widget's looks change).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from eurec4a_nt.demokit.sites import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: What 04-browse.ipynb publishes (RV-Meteor's and OPS's entries).
PUBLISHED = {
    "sondes/EUREC4A_RV-Meteor_sonde_L2_20200205T0645.nc": "sondes",
    "sondes/EUREC4A_RV-Meteor_sonde_L2_20200205T1045.nc": "sondes",
    "quicklooks/RV-Meteor_ceilometer_20200205T1000.png": "quicklook",
    "quicklooks/RV-Meteor_cloud-radar_20200205T1000.png": "quicklook",
    "quicklooks/RV-Meteor_wind-lidar_20200205T1000.png": "quicklook",
    "quicklooks/RV-Meteor_ceilometer_20200205T1100.png": "quicklook",
    "raw/cloud-radar_20200205T10.bin": "raw",
    "planning/HALO_RF09_flight-plan.pdf": "planning",
    "blog/2020-02-05-trade-wind-clouds": "blog",
}
#: JupyterLab settings: no news or update checks (no internet), every cell in the page.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


class Lab:
    """JupyterLab on a loopback port, stopped with its kernels."""

    def __init__(self, notebooks: Path, home: Path, env: dict[str, str]) -> None:
        self.port, self.token = free_port(), secrets.token_hex(16)
        settings = home / "lab-settings"
        for name, body in SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(body))
        self.log = home / "jupyterlab.log"
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--IdentityProvider.token={self.token}",
               "--ServerApp.ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--notebook-dir={notebooks}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.extension_manager=readonly",
               *(["--allow-root"] if os.geteuid() == 0 else [])]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/status", params={"token": self.token}, timeout=2).ok
        except requests.RequestException:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop JupyterLab (it shuts its kernels down); kill whatever of it is left."""
        children = psutil.Process(self.proc.pid).children(recursive=True) if self.proc.poll() is None else []
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        _, alive = psutil.wait_procs(children, timeout=15)
        for child in alive:
            child.kill()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = Lab(notebooks, tmp_path, {**os.environ, "TMPDIR": str(scratch)})
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(server.log, ARTIFACTS / "jupyterlab.log")
        left = [p for p in psutil.process_iter(["cmdline"]) if str(scratch) in " ".join(p.info["cmdline"] or [])]
        for proc in left:
            proc.kill()
        assert not left, f"processes left running: {[p.info['cmdline'] for p in left]}"


def rows(page: object) -> list[str]:
    return page.locator(".nt-browser tr.nt-row").evaluate_all(  # type: ignore[attr-defined]
        "rows => rows.map(r => r.dataset.name)")


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_browser_widget_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1300, "height": 1500})
            page.goto(f"{lab.url}/lab/tree/04-browse.ipynb?token={lab.token}", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            page.keyboard.press("Control+b")  # hide the left sidebar: more room for the widget
            expect(page.locator("#jp-left-stack")).to_be_hidden()
            expect(page.locator("#jp-main-statusbar").get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(
                timeout=60_000)
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
            for _ in range(3):  # the menu may not act while the page is still settling
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    expect(prompts.first).not_to_have_text("[ ]:", timeout=10_000)
                    break
                except AssertionError:
                    continue
            deadline = time.monotonic() + 180
            while not all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts.all_inner_texts()):
                assert time.monotonic() < deadline, f"cells did not finish: {prompts.all_inner_texts()}"
                time.sleep(0.5)
            outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            assert "Traceback" not in outputs and "Error" not in outputs, outputs[-3000:]
            assert "the browser lists 9 entries" in outputs

            widget = page.locator(".nt-browser")
            expect(widget).to_have_count(1)
            expect(widget.locator("tr.nt-row")).to_have_count(len(PUBLISHED))
            assert sorted(rows(page)) == sorted(PUBLISHED)
            assert widget.locator(".nt-preview img").count() == 1  # the preview the notebook asked for
            output = page.locator(".jp-Cell-outputWrapper", has=widget)
            output.evaluate("node => node.scrollIntoView({block: 'center'})")
            output.screenshot(path=str(ARTIFACTS / "browser.png"))

            widget.locator("select.nt-topic").select_option("quicklook")
            expect(widget.locator("tr.nt-row")).to_have_count(4, timeout=30_000)
            assert sorted(rows(page)) == sorted(n for n, t in PUBLISHED.items() if t == "quicklook")
            assert "4 of 9 entries" in widget.locator(".nt-count").inner_text()
            widget.locator("input.nt-query").fill("1100")
            expect(widget.locator("tr.nt-row")).to_have_count(1, timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "browser-filtered.png"), full_page=True)

            widget.locator("input.nt-query").fill("")
            widget.locator("select.nt-topic").select_option("blog")
            expect(widget.locator("tr.nt-row")).to_have_count(1, timeout=30_000)
            widget.locator("tr.nt-row button.nt-show").click()  # a round trip through the kernel
            expect(widget.locator(".nt-preview .nt-panel-title")).to_contain_text(
                "preview OPS/blog/2020-02-05-trade-wind-clouds", timeout=30_000)
            expect(widget.locator(".nt-preview .nt-error")).to_contain_text("cannot reach")  # servers stopped

            widget.locator("select.nt-topic").select_option("sondes")
            expect(widget.locator("tr.nt-row")).to_have_count(2, timeout=30_000)
            widget.locator("tr.nt-row button.nt-open").first.click()
            code = widget.locator(".nt-code pre")
            expect(code).to_contain_text('cat = nt.open_catalog(server="http://127.0.0.1:')
            expect(code).to_contain_text('ds = cat["RV-Meteor"]["sondes/EUREC4A_RV-Meteor_sonde_L2_20200205T')
            expect(code).to_contain_text('"].to_dask()')
        finally:
            chromium.close()
