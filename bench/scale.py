"""Campaign scale: what a site costs at tens of thousands of entries, and a hub of three
server processes on one S3 bucket (a moto server on loopback).

    python -m bench.scale                      # 10,000 and 30,000 entries, 1,000 publishes
    python -m bench.scale --sizes 2000 6000 --publishes 200    # a quick run

For each size, one site's log holds that many entries, one per commit (as a campaign
makes them): a local ``publish(store=)`` of one more file (the first of them makes the
log's checkpoint), ``eurec4a-nt ls`` and ``eurec4a-nt log`` (wall time of the command,
Python start included), a site server's RSS after its status, page and entry list were
asked for, and how long a joining site takes to hold the whole log, from its checkpoint:
over a link (the server offers it), and with ``eurec4a-nt join``. Figures at 100,000
entries are extrapolated from the two sizes measured with their slope (a 2-core machine
cannot hold the rest of the suite and a 100,000-entry run at once), and marked so.

Then three server processes of one site share one bucket: publishers spread over them
make ``--publishes`` concurrent publishes; the log must come out as one chain with
no fork, and a ship linked to one of the three must hold every entry.

The section "Campaign scale" of ``bench/results.md`` is replaced with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from .common import HERE, machine

SITE = "RV-Meteor"
HUB = "MPI"
SECTION = "## Campaign scale"


def _say(text: str) -> None:
    print(f"[scale] {text}", file=sys.stderr, flush=True)


def fill(store_path: Path, n: int) -> None:
    """Give the site's log ``n`` commits of one quicklook entry each (signed commits
    written in one go; the state is then built by one replay, as on first open)."""
    from eurec4a_nt.entries import Entry
    from eurec4a_nt.ids import ObjectId
    from eurec4a_nt.log import Change, make_commit
    from eurec4a_nt.sitestore import SiteStore

    store = SiteStore(store_path)
    key, head, lines = store.key, None, []
    for k in range(n):
        name = f"quicklooks/radar/{k // 1000:03d}/{k:06d}.png"
        entry = Entry(name, "file", ObjectId.of(b"%d" % k), 4096, "png", ("quicklook",),
                      published="2020-02-01T00:00:00.000Z")
        commit = make_commit(key, SITE, k + 1, head, [Change("put", name, entry)])
        head = commit.id
        lines.append(commit.raw)
    (store_path / "logs" / f"{SITE}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    SiteStore(store_path).log(SITE)


def _median_of(runs: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cli(*args: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"eurec4a-nt {' '.join(args)}: {done.stderr[-500:]}")


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def measure_size(n: int, root: Path) -> dict[str, float]:
    """Every figure of one size."""
    import eurec4a_nt as nt
    from eurec4a_nt.demokit.sites import SiteProcess, make_sites

    make_sites(root, [SITE, HUB, "OPS"])
    store = root / SITE
    start = time.perf_counter()
    fill(store, n)
    _say(f"{n} entries: log written and state built in {time.perf_counter() - start:.1f} s")
    work = root / "files"
    work.mkdir()
    counter = iter(range(10**6))

    def publish_one() -> None:
        k = next(counter)
        path = work / f"new-{k}.png"
        path.write_bytes(b"png %d\n" % k * 100)
        nt.publish(path, f"quicklooks/new/{k}.png", topics=["quicklook"], store=store, progress=False)

    out = {"publish": _median_of(7, publish_one),
           "ls": _median_of(3, lambda: _cli("ls", SITE, "--store", str(store))),
           "log": _median_of(3, lambda: _cli("log", SITE, "--store", str(store)))}
    with SiteProcess(store) as server:
        health = []
        for path in ("/api/status", "/", f"/api/sites/{SITE}/entries"):
            started = time.perf_counter()
            requests.get(server.url + path, timeout=600).raise_for_status()
            health.append(time.perf_counter() - started)
        assert server.proc is not None
        out["rss"] = rss(server.proc.pid) / 1e6
        out["status"] = health[0]
        _say(f"{n}: publish {out['publish']:.3f} s, ls {out['ls']:.2f} s, log {out['log']:.2f} s, "
             f"RSS {out['rss']:.0f} MB")
        whole = requests.get(server.url + "/api/sites", timeout=60).json()["sites"][SITE]["seq"]
        start = time.perf_counter()
        with SiteProcess(root / HUB, args=["--link", server.url]) as joining:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                sites = requests.get(joining.url + "/api/sites", timeout=60).json()["sites"]
                if sites.get(SITE, {}).get("seq", 0) >= whole:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the joining site did not catch up within 900 s")
        out["join"] = time.perf_counter() - start
        start = time.perf_counter()
        _cli("join", server.url, "--site", SITE, "--store", str(root / "OPS"))
        out["checkpoint"] = time.perf_counter() - start
        _say(f"{n}: a joining site caught up over its link in {out['join']:.1f} s, "
             f"from the checkpoint in {out['checkpoint']:.1f} s")
    return out


def held_entries(url: str, site: str) -> int:
    """How many entries of ``site`` the server at ``url`` holds whole (paging through
    its entries API)."""
    held, after = 0, ""
    while True:
        try:
            body = requests.get(f"{url}/api/sites/{site}/entries",
                                params={"held": "1", "limit": "1000", "after": after}, timeout=120).json()
        except (requests.RequestException, ValueError):
            return held
        held += sum(e["held"] == e["objects"] for e in body.get("entries", []))
        after = body.get("next")
        if not after:
            return held


def hub_on_s3(publishes: int, root: Path) -> dict[str, float]:
    """Three server processes of one site on one moto bucket, publishers spread over
    them, a ship linked to the third."""
    import eurec4a_nt as nt
    from eurec4a_nt.demokit.sites import SiteProcess
    from eurec4a_nt.keyring import Keyring
    from eurec4a_nt.sitestore import SiteStore
    from eurec4a_nt.testing.s3 import moto_s3, new_bucket, s3_env

    with moto_s3() as endpoint:
        env = s3_env(endpoint)
        os.environ.update(env)
        url = f"s3://{new_bucket(endpoint)}/hub"
        _cli("init", HUB, "--store", url, "--local", str(root / "hub-0"), env=env)
        ship = SiteStore.init(root / SITE, SITE)
        SiteStore(root / "hub-0").trust(ship.keyring)
        ship.trust(Keyring.load(root / "hub-0" / "keyring.yaml"))
        for i in (1, 2):
            shutil.copytree(root / "hub-0", root / f"hub-{i}")
        servers = [SiteProcess(root / f"hub-{i}", env=env).start() for i in range(3)]
        meteor = SiteProcess(ship.path, args=["--link", servers[2].url, "--prefetch", "quicklook"],
                             env=env).start()
        files = root / "files"
        files.mkdir()
        try:
            def publish(k: int) -> None:
                path = files / f"{k}.png"
                path.write_bytes(b"quicklook %d\n" % k * 50)
                via = servers[k % 3]
                nt.publish(path, f"quicklooks/{k:05d}.png", topics=["quicklook"], server=via.url,
                           token=via.token, progress=False)

            start = time.perf_counter()
            with ThreadPoolExecutor(24) as pool:
                list(pool.map(publish, range(publishes)))
            wall = time.perf_counter() - start
            _say(f"{publishes} publishes over 3 processes in {wall:.1f} s")
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                if held_entries(meteor.url, HUB) >= publishes:
                    break
                time.sleep(1)
            else:
                raise RuntimeError("the ship did not get every entry within 900 s")
            pushed = time.perf_counter() - start
            forks = sum(len(s.status()["forks"]) for s in servers)
        finally:
            for proc in (meteor, *servers):
                proc.stop()
        fresh = root / "hub-check"
        shutil.copytree(root / "hub-0", fresh, ignore=shutil.ignore_patterns("state"))
        check = SiteStore(fresh)
        log = check.log(HUB)
        problems = log.verify(check.keyring)
        return {"publishes": publishes, "wall": wall, "per_second": publishes / wall, "pushed": pushed,
                "seq": log.seq, "entries": check.state(HUB).count(), "problems": len(problems),
                "forks": forks}


def extrapolate(a: tuple[int, float], b: tuple[int, float], n: int) -> float:
    """The value at ``n`` on the line through the two measured points (never below the
    larger measured value's level if the slope is negative: noise, not a speed-up)."""
    (n1, v1), (n2, v2) = a, b
    slope = max((v2 - v1) / (n2 - n1), 0.0)
    return v2 + slope * (n - n2)


def report(sizes: list[int], figures: dict[int, dict[str, float]], hub: dict[str, float],
           command: str) -> list[str]:
    rows = [("local `publish(store=)` of one file", "publish", "s", "<= 0.05 s"),
            ("`eurec4a-nt ls SITE` (command wall time)", "ls", "s", "<= 1 s"),
            ("`eurec4a-nt log SITE` (command wall time)", "log", "s", ""),
            ("server RSS after status, page and entry list", "rss", "MB", "<= 200 MB"),
            ("joining site over a link (from the checkpoint; server start included)", "join", "s", "<= 60 s"),
            ("joining site with `eurec4a-nt join` (from the checkpoint)", "checkpoint", "s", "<= 60 s")]
    head = "| | " + " | ".join(f"{n:,} entries" for n in sizes) + " | 100,000 (extrapolated) | goal |"
    lines = [SECTION, "", f"Command: `{command}` (one site, one entry per commit; "
             "100,000 extrapolated from the two sizes with their measured slope).", "",
             head, "|" + "---|" * (len(sizes) + 3)]
    lo, hi = sizes[0], sizes[-1]
    for label, key, unit, goal in rows:
        cells = [f"{figures[n][key]:.3f} {unit}" if unit == "s" else f"{figures[n][key]:.0f} {unit}"
                 for n in sizes]
        at = extrapolate((lo, figures[lo][key]), (hi, figures[hi][key]), 100_000)
        cells.append(f"{at:.3f} {unit}" if unit == "s" else f"{at:.0f} {unit}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {goal} |")
    lines += ["", "`ls` and `log` read only what they print, and a local publish one indexed query "
              "per name: their cost does not grow with the log by design, and the differences "
              "between sizes (and so the slope) are the noise of a shared 2-core machine (about "
              "0.5 s of each command is Python starting). The checkpoint a joining site reads "
              "grows with the entries (about 350 bytes each).",
              "", f"Hub on one moto S3 bucket, three server processes of one site, publishers "
              f"spread over them (24 threads): {hub['publishes']} publishes in {hub['wall']:.1f} s "
              f"({hub['per_second']:.1f}/s); the log holds seq {hub['seq']} with {hub['entries']} "
              f"entries, {hub['problems']} chain or signature problems and {hub['forks']} forks; a "
              f"ship linked to the third process held every entry {hub['pushed']:.1f} s after the "
              "first publish began.", ""]
    return lines


def write_section(lines: list[str], path: Path) -> None:
    """Replace the scale section of ``path`` (or add it at the end)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION in text:
        before, _, after = text.partition(SECTION)
        rest = after.split("\n## ", 1)
        text = before + ("## " + rest[1] if len(rest) > 1 else "")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 30_000], metavar="N")
    parser.add_argument("--publishes", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.scale", *(a for a in given if not a.startswith("--out")
                                                   and not a.endswith(".md"))])
    figures = {}
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-scale-") as tmp:
        for n in args.sizes:
            figures[n] = measure_size(n, Path(tmp) / f"n{n}")
        hub = hub_on_s3(args.publishes, Path(tmp) / "s3")
    lines = report(sorted(args.sizes), figures, hub, command)
    write_section([*lines, *[f"{line}" for line in machine()[:1]], ""], args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
