"""LAN benchmarks: publish, serve and read through on one machine, over loopback.

Scenario 7 of the benchmark issue, with the core and site-server figures:

1. publish throughput of a large file vs ``sha256sum`` of the same file, into a local
   store and through a site server over loopback HTTP (goal: sha256sum time / publish
   time >= 0.7). Page caches cannot be dropped, so each is run twice (each publish into
   a fresh store, so nothing is deduplicated away) and the second, warm, run counts;
2. peak memory (RSS, the kernel's ``VmHWM``) of publishing a 5 GB file, generated
   (incompressible) and sparse (all zeros) (goal < 200 MB);
3. serving a 1 GB entry with ``GET /data/<site>/<name>`` vs nginx serving the same file,
   with 1 and 4 concurrent ``curl`` clients (goal >= 0.5x nginx), and the server's peak
   RSS meanwhile (goal <= 200 MB);
4. read-through: 20 concurrent readers of a 50 MB entry at a second server with a cold
   cache (``--upstream``): bytes fetched upstream, counted on the wire by a byte-counting
   proxy between the two servers, vs 50 MB (goal 1.0x).

Every process started here runs on 127.0.0.1 and is stopped before :func:`run` returns.
``python -m bench.lan worker ...`` is the publishing subprocess this module measures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import HERE, Result, Sampler

MB = 1_000_000
GROUP = "lan"
REPO = HERE.parent
CURL_TIMEOUT = 300


@dataclass(frozen=True)
class Sizes:
    publish: int      # bytes published in the throughput runs (and served)
    rss: int          # bytes published in the memory runs
    readthrough: int  # bytes of the read-through entry
    readers: int      # concurrent read-through readers
    serve_reps: int   # repetitions of each serving measurement (the best counts)

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(publish=256 << 20, rss=1 << 30, readthrough=50 * MB, readers=20, serve_reps=2)
        return cls(publish=1 << 30, rss=5 << 30, readthrough=50 * MB, readers=20, serve_reps=3)


def _label(size: int) -> str:
    return f"{size / (1 << 30):g} GiB" if size >= 1 << 30 else f"{size / (1 << 20):g} MiB"


def _say(text: str) -> None:
    print(f"[lan] {text}", file=sys.stderr, flush=True)


# -- processes: measured subprocesses, memory of running servers ----------------------


def _env(workdir: Path) -> dict[str, str]:
    """The environment of every process started here: no user config, a private cache."""
    return {**os.environ, "EUREC4A_NT_CONFIG": str(workdir / "no-config.yaml"),
            "EUREC4A_NT_CACHE": str(workdir / "client-cache"), "EUREC4A_NT_LOG": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_measured(cmd: list[str], *, env: dict[str, str], timeout: float,
                 cwd: Path | None = None) -> tuple[float, str]:
    """Run ``cmd``; return (wall seconds, stdout).

    Raises RuntimeError with the tail of stderr if it fails or overruns ``timeout``.
    """
    start = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            proc.returncode = proc.returncode or -9
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])} ... exited with {proc.returncode} "
                           f"(timeout {timeout:.0f} s): {err.decode(errors='replace')[-1500:]}")
    return wall, out.decode()


def high_water_mark(pid: int | str) -> int | None:
    """Peak RSS of a running process (``VmHWM``: since it started its program), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class RssPoller(Sampler):
    """Samples the RSS of some processes (and their children) every 20 ms in a thread."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        super().__init__()
        self.procs = [psutil.Process(p) for p in pids]

    def sample(self) -> float:
        import psutil

        total = 0
        for p in self.procs:
            try:
                total += p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
            except psutil.Error:
                pass
        return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by processes and their children."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


@contextmanager
def site_server(store: Path, args: list[str] | None = None) -> Iterator[Any]:
    """``eurec4a-nt serve`` on a free loopback port, stopped on exit."""
    from eurec4a_nt.demokit.sites import SiteProcess

    server = SiteProcess(store, args=args or [], env={"EUREC4A_NT_LOG": "warning"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def nginx(root: Path, files: dict[str, Path]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """nginx in the foreground on a free loopback port serving ``files`` (name -> path,
    symlinked under ``root/www``) with sendfile on; yields (base URL, master process)."""
    from eurec4a_nt.demokit.sites import free_port
    from eurec4a_nt.testing import proxy

    www = root / "www"
    www.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        (www / name).unlink(missing_ok=True)
        (www / name).symlink_to(path.resolve())
    port = free_port()
    servers = f"""  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {www};
  }}
"""
    with proxy.nginx(root, servers, port) as proc:
        yield f"http://127.0.0.1:{port}", proc


# -- the publishing worker (a subprocess, so its memory and time are its own) ---------


def worker(argv: list[str]) -> int:
    """``python -m bench.lan worker PATH NAME (--store DIR | --server URL --token T)``:
    publish, print JSON with the seconds publish() took, the seconds importing it took
    before (``import_seconds``: not counted, like the interpreter's start) and this
    process's peak RSS (``VmHWM``; ``ru_maxrss`` of a child can count the parent's
    memory before ``exec``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.lan worker")
    parser.add_argument("path")
    parser.add_argument("name")
    parser.add_argument("--store")
    parser.add_argument("--server")
    parser.add_argument("--token")
    args = parser.parse_args(argv)
    start = time.monotonic()
    from eurec4a_nt import publish

    imported = time.monotonic() - start
    start = time.monotonic()
    entry = publish(args.path, name=args.name, store=args.store, server=args.server, token=args.token,
                    progress=False)
    seconds = time.monotonic() - start
    print(json.dumps({"seconds": seconds, "import_seconds": imported, "root": entry.root, "size": entry.size,
                      "maxrss": high_water_mark("self")}))
    return 0


def publish_measured(path: Path, name: str, workdir: Path, *, store: Path | None = None,
                     server: Any = None, timeout: float = 900) -> dict[str, Any]:
    """Publish in a worker subprocess; its JSON answer (with ``maxrss``) plus ``wall``."""
    cmd = [sys.executable, "-m", "bench.lan", "worker", str(path), name]
    cmd += ["--store", str(store)] if store else ["--server", server.url, "--token", server.token]
    wall, out = run_measured(cmd, env=_env(workdir), timeout=timeout, cwd=REPO)
    return {**json.loads(out.strip().splitlines()[-1]), "wall": wall}


# -- scenario 1: publish vs sha256sum -------------------------------------------------


def _runs(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in runs)


def _fresh_site(root: Path) -> Path:
    """A new, empty store of site OPS under ``root`` (which is emptied first)."""
    from eurec4a_nt.demokit.sites import make_sites

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    make_sites(root, ["OPS"])
    return root / "OPS"


def _published_sha256(store: Path, name: str) -> str:
    """The SHA-256 of entry ``name`` of OPS at ``store``, read back block by block."""
    from eurec4a_nt.chunking import FileRecord
    from eurec4a_nt.sitestore import SiteStore

    site = SiteStore(store)
    entry = site.entries("OPS")[name]
    h = hashlib.sha256()
    for block in FileRecord.from_bytes(site.objects.get(entry.root)).blocks:
        h.update(site.objects.get(block.id, verify=True))
    return h.hexdigest()


def _hash_tool(cmd: list[str], path: Path, runs: int = 2) -> tuple[list[float], str]:
    """Wall seconds of each run of ``cmd path`` and the hex digest it printed."""
    times, digest = [], ""
    for _ in range(runs):
        start = time.monotonic()
        out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=True, timeout=600)
        times.append(time.monotonic() - start)
        digest = out.stdout.split()[0]  # "<hex> <path>" or "<hex> *<path>"
    return times, digest


def bench_publish(data: Path, size: int, workdir: Path) -> tuple[list[Result], Path]:
    """Scenario 1. Returns the results and a store that holds ``data`` as entry ``big.bin``."""
    label = _label(size)
    sha_times, sha_digest = _hash_tool(["sha256sum"], data)
    ssl_times, ssl_digest = ([], "")
    if shutil.which("openssl"):
        ssl_times, ssl_digest = _hash_tool(["openssl", "dgst", "-sha256", "-r"], data)
    sha = sha_times[-1]
    _say(f"sha256sum {label}: runs {', '.join(f'{t:.2f}' for t in sha_times)} s")
    results = [Result(f"{GROUP}: hash {label}", "sha256sum", wall=sha,
                      note=f"runs {', '.join(f'{t:.2f}' for t in sha_times)} s; 2nd (warm) counts"
                           f"; {size / sha / MB:.0f} MB/s")]
    if ssl_times:
        results.append(Result(f"{GROUP}: hash {label}", "openssl dgst -sha256", wall=ssl_times[-1],
                              note=f"reference only: OpenSSL uses the CPU's SHA extensions, "
                                   f"coreutils sha256sum does not; {size / ssl_times[-1] / MB:.0f} MB/s"))

    # into a local store: a fresh store for every run, so nothing deduplicates away
    local_runs = []
    store = workdir / "publish-local"
    for i in range(2):
        store = _fresh_site(workdir / f"publish-local-{i + 1}")
        local_runs.append(publish_measured(data, "big.bin", workdir, store=store))
        if i == 0:
            shutil.rmtree(store.parent)
    local = local_runs[-1]
    digest = _published_sha256(store, "big.bin")
    if digest != sha_digest or (ssl_digest and ssl_digest != sha_digest):
        raise RuntimeError(f"digests differ: sha256sum {sha_digest}, openssl {ssl_digest}, published {digest}")
    ratio = sha / local["seconds"]
    _say(f"publish {label} locally: runs {_runs(local_runs)} s, "
         f"ratio {ratio:.2f}")
    results.append(Result(
        f"{GROUP}: publish {label} into a local store", "eurec4a-nt", wall=local["seconds"],
        goal=">= 0.7 (sha256sum time / publish time)", value=ratio,
        note=f"runs {_runs(local_runs)} s, 2nd (warm, fresh store) "
             f"counts; {size / local['seconds'] / MB:.0f} MB/s; peak RSS {local['maxrss'] / MB:.0f} MB"
             + (f"; vs openssl {ssl_times[-1] / local['seconds']:.2f}" if ssl_times else ""),
        extra={"goal_min": 0.7, "sha256sum": sha, "peak_rss": local["maxrss"], "size": size,
               **({"openssl": ssl_times[-1]} if ssl_times else {})}))

    # through a site server over loopback HTTP: a fresh server and store for every run
    server_runs = []
    for i in range(2):
        site = _fresh_site(workdir / f"publish-server-{i + 1}")
        with site_server(site) as ops:
            with RssPoller([ops.proc.pid]) as poll:
                run_ = publish_measured(data, "big.bin", workdir, server=ops)
            run_["server_rss"] = max(poll.peak, high_water_mark(ops.proc.pid) or 0)
            served = ops.status()["traffic"]["uploaded"]
        run_["uploaded"] = served
        server_runs.append(run_)
        shutil.rmtree(site.parent)
    remote = server_runs[-1]
    ratio = sha / remote["seconds"]
    _say(f"publish {label} through a server: runs "
         f"{_runs(server_runs)} s, ratio {ratio:.2f}")
    results.append(Result(
        f"{GROUP}: publish {label} through a site server", "eurec4a-nt", wall=remote["seconds"],
        sent_up=remote["uploaded"], goal=">= 0.7 (sha256sum time / publish time)", value=ratio,
        note=f"runs {_runs(server_runs)} s, 2nd (warm, fresh server) "
             f"counts; {size / remote['seconds'] / MB:.0f} MB/s; peak RSS client "
             f"{remote['maxrss'] / MB:.0f} MB, server {remote['server_rss'] / MB:.0f} MB",
        extra={"goal_min": 0.7, "sha256sum": sha, "peak_rss": remote["maxrss"],
               "server_rss": remote["server_rss"]}))
    return results, store


# -- scenario 2: memory of publishing a big file --------------------------------------


def _sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def bench_memory(size: int, workdir: Path) -> list[Result]:
    """Scenario 2: peak RSS of publishing ``size`` bytes, generated and sparse."""
    from eurec4a_nt.demokit.sampledata import raw_file

    results = []
    label = _label(size)
    root = workdir / "memory"
    for kind in ("generated", "sparse"):
        path = root / f"{kind}.bin"
        root.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        if kind == "generated":
            raw_file(path, size=size, seed=5)
        else:
            _sparse_file(path, size)
        made = time.monotonic() - start
        store = _fresh_site(root / "store")
        try:
            run_ = publish_measured(path, f"{kind}.bin", workdir, store=store)
        finally:
            path.unlink(missing_ok=True)
            shutil.rmtree(store.parent, ignore_errors=True)
        _say(f"publish {label} {kind}: peak RSS {run_['maxrss'] / MB:.0f} MB in {run_['seconds']:.1f} s")
        what = ("incompressible seeded bytes, every block new" if kind == "generated"
                else "all zeros: every block is the same 4 MiB block")
        results.append(Result(
            f"{GROUP}: peak RSS publishing {label} ({kind})", "eurec4a-nt", wall=run_["seconds"],
            goal="< 200 MB", value=run_["maxrss"] / MB,
            note=f"{what}; VmHWM of the publishing process, in MB; file made in {made:.0f} s",
            extra={"goal_max": 200.0, "peak_rss": run_["maxrss"]}))
    return results


# -- scenario 3: serving vs nginx -----------------------------------------------------


def curl_clients(url: str, count: int, size: int) -> float:
    """Wall seconds for ``count`` concurrent ``curl`` downloads of ``url`` to /dev/null;
    raises unless each got ``size`` bytes with 200."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(CURL_TIMEOUT),
           "-w", "%{http_code} %{size_download}", url]
    start = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=CURL_TIMEOUT + 10))
        except subprocess.TimeoutExpired:
            p.kill()
            outs.append(p.communicate())
    wall = time.monotonic() - start
    for out, err in outs:
        if out.strip() != f"200 {size}":
            raise RuntimeError(f"curl {url}: got {out.strip()!r} {err.strip()}, expected 200 {size}")
    return wall


def bench_serve(data: Path, store: Path, size: int, reps: int, workdir: Path) -> list[Result]:
    """Scenario 3: ``GET /data/OPS/big.bin`` vs nginx, 1 and 4 clients; server RSS."""
    label = _label(size)
    root = workdir / "nginx"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    best: dict[tuple[str, int], float] = {}
    runs: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], float] = {}
    with site_server(store) as ops, nginx(root, {"big.bin": data}) as (nginx_url, nginx_proc):
        urls = {"eurec4a-nt": (ops.url + "/data/OPS/big.bin", ops.proc.pid),
                "nginx": (nginx_url + "/big.bin", nginx_proc.pid)}
        curl_clients(urls["eurec4a-nt"][0], 1, size)  # warm up both (page cache, first request)
        curl_clients(urls["nginx"][0], 1, size)
        with RssPoller([ops.proc.pid]) as poll:
            for clients in (1, 4):
                for _ in range(reps):
                    for tool, (url, pid) in urls.items():  # alternate, so drift hits both alike
                        before = cpu_seconds([pid])
                        wall = curl_clients(url, clients, size)
                        used = cpu_seconds([pid]) - before
                        key = (tool, clients)
                        runs.setdefault(key, []).append(wall)
                        if wall < best.get(key, float("inf")):
                            best[key], cpu[key] = wall, used
        server_rss = max(poll.peak, high_water_mark(ops.proc.pid) or 0)
        served = ops.status()["traffic"]["served"]
    _say(f"serve {label}: " + ", ".join(f"{t} x{c} {size * c / w / MB:.0f} MB/s" for (t, c), w in best.items()))
    results = []
    for clients in (1, 4):
        nt, ng = best[("eurec4a-nt", clients)], best[("nginx", clients)]
        ratio = ng / nt
        for tool, wall in (("nginx", ng), ("eurec4a-nt", nt)):
            key = (tool, clients)
            results.append(Result(
                f"{GROUP}: serve {label} to {clients} client{'s' if clients > 1 else ''}", tool, wall=wall,
                sent_down=size * clients,
                goal=">= 0.5x nginx throughput" if tool == "eurec4a-nt" else "",
                value=ratio if tool == "eurec4a-nt" else None,
                note=f"{size * clients / wall / MB:.0f} MB/s; best of "
                     f"{', '.join(f'{w:.2f}' for w in runs[key])} s; server CPU "
                     f"{cpu[key] / (size * clients / 1e9):.2f} s per GB",
                extra={"goal_min": 0.5} if tool == "eurec4a-nt" else {}))
    results.append(Result(
        f"{GROUP}: server peak RSS while serving {label}", "eurec4a-nt", goal="<= 200 MB",
        value=server_rss / MB, sent_down=served,
        note=f"MB; RSS polled every 20 ms and VmHWM, over all {2 * reps * 5 + 1} downloads",
        extra={"goal_max": 200.0, "peak_rss": server_rss}))
    return results


# -- scenario 4: read-through -------------------------------------------------------


async def _read_all(url: str, readers: int, expect: str) -> float:
    """``readers`` concurrent GETs of ``url``, each hashed and checked; wall seconds."""
    import aiohttp

    async def one(session: aiohttp.ClientSession) -> None:
        h = hashlib.sha256()
        async with session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status} {await response.text()}")
            async for piece in response.content.iter_chunked(1 << 20):
                h.update(piece)
        if h.hexdigest() != expect:
            raise RuntimeError(f"GET {url}: wrong bytes (sha256 {h.hexdigest()}, expected {expect})")

    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=readers)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.monotonic()
        await asyncio.gather(*(one(session) for _ in range(readers)))
        return time.monotonic() - start


def _wait_for_entry(server: Any, site: str, name: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.get(f"{server.url}/api/sites/{site}/entries", timeout=5)
        if r.ok and any(e["name"] == name for e in r.json()["entries"]):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.url} did not learn of {site}/{name} within {timeout} s")


def _link_sent(status: dict[str, Any]) -> int:
    return sum(int(link.get("sent", 0)) for link in status["links"])


def bench_readthrough(size: int, readers: int, workdir: Path) -> list[Result]:
    """Scenario 4: ``readers`` concurrent readers at BCO of an OPS entry BCO lacks."""
    import eurec4a_nt
    from eurec4a_nt.demokit.emulator import EmulatorThread, LinkProfile
    from eurec4a_nt.demokit.sampledata import raw_file
    from eurec4a_nt.demokit.sites import make_sites

    root = workdir / "readthrough"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    make_sites(root, ["OPS", "BCO"])
    path = raw_file(root / "entry.bin", size=size, seed=7)
    expect = hashlib.sha256(path.read_bytes()).hexdigest()
    eurec4a_nt.publish(path, name="sondes/entry.bin", store=root / "OPS", progress=False)
    label = f"{size / MB:g} MB"
    # a byte-counting TCP proxy (the link emulator, unlimited and without delay) between
    # the two servers: what the upstream sends is counted on the wire
    with (site_server(root / "OPS") as ops,
          EmulatorThread(ops.port, LinkProfile(down=None, up=None, delay=0.0)) as wire):
        proxy = f"http://127.0.0.1:{wire.port}"
        with site_server(root / "BCO", ["--upstream", proxy]) as bco:
            _wait_for_entry(bco, "OPS", "sondes/entry.bin")
            time.sleep(0.5)
            url = f"{bco.url}/data/OPS/sondes/entry.bin"
            waves = []
            for _ in range(2):  # cold cache, then warm
                before_wire, before_ops = wire.stats, ops.status()
                wall = asyncio.run(_read_all(url, readers, expect))
                time.sleep(1.0)  # let counters settle
                after_wire, after_ops = wire.stats, ops.status()
                waves.append({
                    "wall": wall,
                    "wire_down": after_wire["sent_down"] - before_wire["sent_down"],
                    "wire_up": after_wire["sent_up"] - before_wire["sent_up"],
                    "served": after_ops["traffic"]["served"] - before_ops["traffic"]["served"],
                    "link_sent": _link_sent(after_ops) - _link_sent(before_ops),
                })
            bco_served = bco.status()["traffic"]["served"]
    cold, warm = waves
    ratio = cold["wire_down"] / size
    _say(f"read-through {readers} x {label}: upstream sent {cold['wire_down']} B (ratio {ratio:.3f}), "
         f"then {warm['wire_down']} B warm")
    return [
        Result(f"{GROUP}: read-through, {readers} readers of {label}, cold cache", "eurec4a-nt",
               wall=cold["wall"], sent_up=cold["wire_up"], sent_down=cold["wire_down"],
               goal="1.0x the entry upstream", value=ratio,
               note=f"bytes upstream -> reader site counted on the wire by a proxy; upstream's "
                    f"link counted {cold['link_sent']} B sent, its traffic.served "
                    f"{cold['served']} B (link transfers are not counted there); "
                    f"{bco_served / MB:.0f} MB served to readers",
               extra={"goal_max": 1.05, "link_sent": cold["link_sent"], "served": cold["served"]}),
        Result(f"{GROUP}: read-through, {readers} readers of {label}, warm cache", "eurec4a-nt",
               wall=warm["wall"], sent_up=warm["wire_up"], sent_down=warm["wire_down"],
               goal="0 upstream", value=warm["wire_down"] / size,
               note="the same readers again: everything is held at the reader site now",
               extra={"goal_max": 0.01}),
    ]


# -- the group --------------------------------------------------------------------


def _guarded(name: str, results: list[Result], fn: Callable[[], list[Result]]) -> None:
    """Run one scenario; a failure becomes a row saying so, and the others still run."""
    start = time.monotonic()
    try:
        results.extend(fn())
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
        traceback.print_exc()
        results.append(Result(f"{GROUP}: {name}", "eurec4a-nt",
                              note=f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"))
    _say(f"{name}: {time.monotonic() - start:.0f} s")


def run(quick: bool, workdir: Path) -> list[Result]:
    sizes = Sizes.for_mode(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data" / "big.bin"
    data.parent.mkdir(exist_ok=True)
    from eurec4a_nt.demokit.sampledata import raw_file

    raw_file(data, size=sizes.publish, seed=1)
    results: list[Result] = []
    holder: dict[str, Path] = {}

    def publish_() -> list[Result]:
        found, holder["store"] = bench_publish(data, sizes.publish, workdir)
        return found

    def serve_() -> list[Result]:
        store = holder.get("store")
        if store is None:  # publishing failed: make a store holding the file anyway
            import eurec4a_nt

            store = _fresh_site(workdir / "serve")
            eurec4a_nt.publish(data, name="big.bin", store=store, progress=False)
        return bench_serve(data, store, sizes.publish, sizes.serve_reps, workdir)

    load_before = os.getloadavg()[0]
    _guarded(f"publish {_label(sizes.publish)}", results, publish_)
    _guarded(f"serve {_label(sizes.publish)}", results, serve_)
    _guarded(f"memory of publishing {_label(sizes.rss)}", results,
             lambda: bench_memory(sizes.rss, workdir))
    _guarded(f"read-through of {sizes.readthrough / MB:g} MB", results,
             lambda: bench_readthrough(sizes.readthrough, sizes.readers, workdir))
    results.append(Result(
        f"{GROUP}: machine load", "machine", value=os.getloadavg()[0],
        note=f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
             f"the LAN group, on {os.cpu_count()} cores: other work on the machine slows every "
             "tool measured here alike, but adds noise"))
    # gigabytes of data and objects; logs and configurations stay
    shutil.rmtree(data.parent, ignore_errors=True)
    for objects in workdir.glob("**/objects"):
        shutil.rmtree(objects, ignore_errors=True)
    return results


def _met(r: Result) -> str:
    if r.value is None:
        return "?"
    if "goal_min" in r.extra:
        return "yes" if r.value >= r.extra["goal_min"] else "**no**"
    if "goal_max" in r.extra:
        return "yes" if r.value <= r.extra["goal_max"] else "**no**"
    return ""


def headline(results: list[Result]) -> list[str]:
    lines = ["## LAN: publish, serve, read through (one machine, loopback)", "",
             "| measure | eurec4a-nt | reference | ratio / value | goal | met |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r.value is None or r.tool != "eurec4a-nt":
            continue
        name = r.scenario.removeprefix(f"{GROUP}: ")
        if name.startswith("publish"):
            ref = f"sha256sum {r.extra['sha256sum']:.2f} s"
            lines.append(f"| {name} (warm, 2nd run) | {r.wall:.2f} s | {ref} | {r.value:.2f}x | >= 0.7x | {_met(r)} |")
        elif "RSS" in name:
            goal = "< 200 MB" if "publishing" in name else "<= 200 MB"
            lines.append(f"| {name} | {r.value:.0f} MB | | | {goal} | {_met(r)} |")
        elif name.startswith("serve "):
            nginx_row = next((x for x in results if x.scenario == r.scenario and x.tool == "nginx"), None)
            size = r.sent_down or 0
            ours = f"{size / r.wall / MB:.0f} MB/s" if r.wall else ""
            ref = f"nginx {size / nginx_row.wall / MB:.0f} MB/s" if nginx_row and nginx_row.wall else ""
            lines.append(f"| {name} | {ours} | {ref} | {r.value:.2f}x | >= 0.5x | {_met(r)} |")
        elif "read-through" in name:
            goal = "1.0x" if "cold" in name else "0"
            entry = name.split(" of ")[1].split(",")[0]
            lines.append(f"| {name} | {(r.sent_down or 0) / MB:.2f} MB upstream | entry {entry} "
                         f"| {r.value:.3f}x | {goal} | {_met(r)} |")
    failed = [r for r in results if r.note.startswith("FAILED")]
    lines += [""] + [f"- {r.scenario}: {r.note}" for r in failed] if failed else []
    ssl = next((r for r in results if r.tool.startswith("openssl")), None)
    sha = next((r for r in results if r.tool == "sha256sum"), None)
    local = next((r for r in results if "into a local store" in r.scenario and r.wall), None)
    load = next((r for r in results if r.tool == "machine"), None)
    lines.append("")
    if ssl and sha and ssl.wall and sha.wall and local and local.wall:
        lines.append(f"- `sha256sum` here (coreutils) hashes at {local.extra.get('size', 0) / sha.wall / MB:.0f} "
                     f"MB/s without the CPU's SHA instructions; OpenSSL's SHA-256 runs at "
                     f"{local.extra.get('size', 0) / ssl.wall / MB:.0f} MB/s. Against OpenSSL, publishing "
                     f"locally is {ssl.wall / local.wall:.2f}x (it hashes every byte once, for its "
                     f"block's id, which is also the store's check of the write; cutting blocks and "
                     f"writing and fsyncing every block make up the rest).")
    if load:
        lines.append(f"- {load.note}")
    lines += ["", ("Publish figures: each tool run twice on the same file (page caches cannot be "
                   "dropped here), the second (warm) run counts; every publish goes into a fresh "
                   "store or server, so no block is deduplicated away. Serving: the best of repeated "
                   "`curl -o /dev/null` downloads, alternating nginx and eurec4a-nt.")]
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        raise SystemExit(worker(sys.argv[2:]))
    raise SystemExit("usage: python -m bench.lan worker PATH NAME (--store DIR | --server URL --token T)")
