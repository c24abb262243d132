"""What users get: the wheel and the sdist, installed into fresh virtualenvs with no
source tree on the path, at the versions of ``uv.lock``, then used as a user would (the
command line, a site server, a worked notebook).

These build and install for real (uv, from its cache or the package index), so they are
slow; each is bounded in time and leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from eurec4a_nt.demokit.sites import stop_process

ROOT = Path(__file__).resolve().parent.parent
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
#: The scientific stack a site server does not need.
SCIENCE = ("xarray", "dask", "scipy", "zarr", "intake", "numpy")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(UV is None, reason="uv is not installed")]


def uv(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run uv (no project discovery), returning its output; fail the test with it."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
    done = subprocess.run([UV, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, the sdist and the pinned versions of every dependency (from uv.lock)."""
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--sdist", "--wheel", "--out-dir", out, ROOT, timeout=300)
    uv("export", "--frozen", "--all-extras", "--no-hashes", "--no-emit-project", "--no-header",
       "--output-file", out / "constraints.txt", cwd=ROOT)
    return out


def venv(dist: Path, where: Path, extra: str = "") -> Path:
    """A fresh virtualenv holding the wheel (with ``extra``); returns its bin folder."""
    uv("venv", "--python", sys.executable, where)
    wheel = next(dist.glob("*.whl"))
    uv("pip", "install", "--python", where / "bin" / "python", "--constraint", dist / "constraints.txt",
       f"{wheel}[{extra}]" if extra else wheel)
    return where / "bin"


def run(bin_: Path, *args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command of the virtualenv, run outside the source tree with a clean environment."""
    env = {"PATH": f"{bin_}:{os.environ['PATH']}", "HOME": str(cwd), "EUREC4A_NT_CACHE": str(cwd / "cache")}
    return subprocess.run([str(bin_ / str(args[0])), *map(str, args[1:])], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; stopped afterwards."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        stop_process(proc)


@pytest.mark.timeout(600)
def test_sdist_and_wheel_hold_everything_the_package_reads(dist: Path) -> None:
    wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    for data in ("eurec4a_nt/server/templates/index.html", "eurec4a_nt/py.typed"):
        assert data in wheel, f"{data} is missing from the wheel"
    assert any(n.startswith("eurec4a_nt/jupyter/") and n.endswith(".js") for n in wheel)
    assert not any(n.startswith("tests/") for n in wheel)
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        names = sdist.getnames()
    for data in ("LICENSE", "README.md", "pyproject.toml", "eurec4a_nt/server/templates/index.html"):
        assert any(n.endswith("/" + data) for n in names), f"{data} is missing from the sdist"


@pytest.mark.timeout(600)
def test_core_install_serves_and_syncs_without_the_scientific_stack(
        dist: Path, tmp_path: Path, served: list[subprocess.Popen[str]]) -> None:
    bin_ = venv(dist, tmp_path / "venv")
    present = run(bin_, "python", "-c",
                  f"import importlib.util as u; print(*[m for m in {SCIENCE!r} if u.find_spec(m)])",
                  cwd=tmp_path)
    assert present.returncode == 0 and present.stdout.split() == [], present

    help_ = run(bin_, "eurec4a-nt", "--help", cwd=tmp_path)
    assert help_.returncode == 0 and "publish" in help_.stdout, help_.stderr

    assert run(bin_, "eurec4a-nt", "init", "RV-Meteor", "--store", "store", cwd=tmp_path).returncode == 0
    token = run(bin_, "eurec4a-nt", "token", "create", "--store", "store", cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    port_file = tmp_path / "port"
    served.append(subprocess.Popen(
        [str(bin_ / "eurec4a-nt"), "serve", "--store", "store", "--port", "0", "--port-file", str(port_file)],
        cwd=tmp_path, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for _ in range(600):
        if port_file.exists():
            break
        assert served[0].poll() is None, served[0].communicate()[0]
        time.sleep(0.05)
    url = f"http://127.0.0.1:{int(port_file.read_text())}"
    assert requests.get(url + "/health", timeout=10).ok

    data = os.urandom(3_000_000)
    (tmp_path / "raw.bin").write_bytes(data)
    tok = token.stdout.split()[-1]
    published = run(bin_, "eurec4a-nt", "publish", "raw.bin", "--name", "raw/a.bin", "--topic", "raw",
                    "--server", url, "--token", tok, cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    got = run(bin_, "eurec4a-nt", "get", "RV-Meteor/raw/a.bin", "copy.bin", "--server", url, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "copy.bin").read_bytes() == data

    needs_science = run(bin_, "python", "-c",
                        f"import eurec4a_nt as nt; nt.open_catalog(server={url!r})", cwd=tmp_path)
    assert needs_science.returncode != 0
    assert "pip install 'eurec4a-nt[science]'" in needs_science.stderr, needs_science.stderr[-2000:]


@pytest.mark.timeout(900)
def test_jupyter_install_runs_a_worked_notebook(dist: Path, tmp_path: Path) -> None:
    bin_ = venv(dist, tmp_path / "venv", "jupyter")
    notebook = tmp_path / "04-browse.ipynb"
    shutil.copy(ROOT / "notebooks" / notebook.name, notebook)
    done = run(bin_, "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
               "--ExecutePreprocessor.timeout=300", notebook, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "application/vnd.jupyter.widget-view+json" in notebook.read_text()
