"""The worked notebooks run top to bottom against the real site servers they start
(or the one named by ``EUREC4A_NT_SERVER``), show what their story promises (plots,
reprs, progress bars, the browser widget), and leave no server running and no
temporary store behind."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import psutil
import pytest
import requests
from nbclient import NotebookClient

from eurec4a_nt.demokit.sites import SiteProcess

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"
#: Output types each notebook must show (besides finishing without an error).
EXPECTED = {
    "01-open-a-dataset.ipynb": {"image/png", "text/html", WIDGET},
    "02-publish.ipynb": {"image/png", "text/html", WIDGET},
    "03-prefetch-quicklooks.ipynb": {"image/png", "text/html", WIDGET},
    "04-browse.ipynb": {WIDGET},
}


@pytest.mark.timeout(30)
def test_every_notebook_is_tested_and_stored_without_outputs() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)
    for name in EXPECTED:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert "demo.stop()" in code[-1].source, f"{name}: the last cell stops the servers"


def run(name: str, tmp_path: Path, **env: str) -> set[str]:
    """Run a notebook in a fresh kernel; return the output types it showed. Checks that
    it left no process and no temporary store behind (its temporary files go to a
    folder of this test)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "MPLBACKEND": "module://matplotlib_inline.backend_inline", **env}
    client = NotebookClient(nb, timeout=240, kernel_name="python3", startup_timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute(env=env)
    finally:
        leftovers = [p for p in psutil.process_iter(["pid", "cmdline"])
                     if str(scratch) in " ".join(p.info["cmdline"] or [])]
        for proc in leftovers:
            proc.kill()
    assert not leftovers, f"{name} left processes running: {[p.info['cmdline'] for p in leftovers]}"
    assert not list(scratch.glob("eurec4a-nt-demo-*")), f"{name} left its temporary stores"
    return {kind for cell in nb.cells if cell.cell_type == "code"
            for out in cell.outputs for kind in out.get("data", {})}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs(name: str, tmp_path: Path) -> None:
    shown = run(name, tmp_path)
    assert EXPECTED[name] <= shown, f"{name} showed only {sorted(shown)}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_notebook_uses_the_server_in_the_environment(server: SiteProcess, tmp_path: Path) -> None:
    shown = run("04-browse.ipynb", tmp_path, EUREC4A_NT_SERVER=server.url, EUREC4A_NT_TOKEN=server.token)
    assert WIDGET in shown
    names = {e["name"] for e in requests.get(f"{server.url}/api/sites/RV-Meteor/entries", timeout=30).json()["entries"]}
    assert "quicklooks/RV-Meteor_ceilometer_20200205T1100.png" in names and len(names) == 9
