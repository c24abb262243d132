"""A large file entry read through a site server whose store is on S3 (a moto server on
loopback), against s3fs reading the same block objects straight from the same moto
server in the same run: moto is slow itself, so only the ratio means something.

moto runs in a process of its own. The entry is incompressible seeded bytes, published
into a store whose ``objects:`` are in the bucket (about 1 MiB content-defined blocks). Timed, each ``reps`` times,
alternating, the best run counting:

- s3fs ``cat`` of every block object of the entry in one call (s3fs fetches them
  concurrently: its best plain use), and one ``cat_file`` after the other;
- ``curl`` of ``/data/SITE/NAME`` from the server (every block checked against its id
  before it is sent), and of a Range of half the entry from its middle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .common import Result

GROUP = "s3read"
MB = 1_000_000
SITE = "MPI"
GOAL = 0.5


@contextmanager
def moto_process() -> Iterator[str]:
    """A moto S3 server in a process of its own (not sharing a GIL with the s3fs reads
    it is measured against); yields its endpoint URL."""
    from eurec4a_nt.demokit.sites import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(endpoint, timeout=5)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(30)


def _curl(url: str, *args: str) -> float:
    start = time.monotonic()
    subprocess.run(["curl", "-sSf", "-o", os.devnull, *args, url], check=True, timeout=900)
    return time.monotonic() - start


def _timed(action: object) -> float:
    start = time.monotonic()
    action()  # type: ignore[operator]
    return time.monotonic() - start


def run(quick: bool, workdir: Path) -> list[Result]:
    import s3fs

    import eurec4a_nt
    from eurec4a_nt.demokit.sampledata import raw_file
    from eurec4a_nt.demokit.sites import SiteProcess
    from eurec4a_nt.manifests import blocks_of, entry_ref
    from eurec4a_nt.sitestore import SiteStore
    from eurec4a_nt.testing.s3 import new_bucket, s3_env, s3_options

    size, reps = (128 * MB, 2) if quick else (320 * MB, 3)
    workdir.mkdir(parents=True, exist_ok=True)
    with moto_process() as endpoint:
        env = s3_env(endpoint)
        os.environ.update(env)
        bucket = new_bucket(endpoint)
        store = SiteStore.init(workdir / SITE, SITE, objects=f"s3://{bucket}/{SITE.lower()}")
        data = raw_file(workdir / "big.bin", size=size, seed=5)
        start = time.monotonic()
        entry = eurec4a_nt.publish(data, name="big.bin", store=store.path, progress=False)
        print(f"s3read: published {size // MB} MB into moto S3 in {time.monotonic() - start:.1f} s", flush=True)
        data.unlink()
        store = SiteStore(store.path)
        blocks = blocks_of(entry_ref(entry), store.objects.get)  # type: ignore[union-attr]
        paths = [store.objects._path(oid) for oid, _, _ in blocks]  # type: ignore[attr-defined]
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))
        runs: dict[str, list[float]] = {"s3fs cat": [], "s3fs cat_file": [], "curl": [], "curl range": []}
        with SiteProcess(store.path, env={**env, "EUREC4A_NT_LOG": "warning"}) as server:
            url = f"{server.url}/data/{SITE}/big.bin"
            half = f"bytes={size // 4}-{size // 4 + size // 2 - 1}"
            _curl(url, "-r", f"0-{MB}")  # the server's first request warms its entry state
            for _ in range(reps):
                runs["s3fs cat"].append(_timed(lambda: fs.cat(paths)))
                runs["s3fs cat_file"].append(_timed(lambda: [fs.cat_file(p) for p in paths]))
                runs["curl"].append(_curl(url))
                runs["curl range"].append(_curl(url, "-H", f"Range: {half}"))
        print("s3read runs:", {k: [round(t, 2) for t in v] for k, v in runs.items()}, flush=True)
    best = {k: min(v) for k, v in runs.items()}
    direct = best["s3fs cat"]
    scenario = f"{GROUP}: a {size // MB} MB file entry ({len(blocks)} blocks) from moto S3"
    return [
        Result(scenario, "s3fs cat (concurrent)", wall=direct, sent_down=size,
               note=f"best of {reps}; {size / MB / direct:.0f} MB/s"),
        Result(scenario, "s3fs cat_file (one after another)", wall=best["s3fs cat_file"], sent_down=size,
               note=f"best of {reps}; {size / MB / best['s3fs cat_file']:.0f} MB/s"),
        Result(scenario, "curl of /data through the server", wall=best["curl"], sent_down=size,
               value=direct / best["curl"], goal=f">= {GOAL}x s3fs cat", extra={"goal_min": GOAL},
               note=f"best of {reps}; {size / MB / best['curl']:.0f} MB/s; speed relative to s3fs cat"),
        Result(scenario, "curl of a Range (half the entry) through the server", wall=best["curl range"],
               sent_down=size // 2, value=direct / 2 / best["curl range"], goal=f">= {GOAL}x s3fs cat",
               extra={"goal_min": GOAL},
               note=f"best of {reps}; {size / 2 / MB / best['curl range']:.0f} MB/s; speed relative to s3fs cat"),
    ]


def headline(results: list[Result]) -> list[str]:
    lines = ["## s3read: a large entry through a hub on S3, against s3fs on the same objects", "",
             "One moto S3 server on loopback holds the blocks; the ratio is the server's speed "
             "over s3fs's `cat` of every block object (concurrent) in the same run.", "",
             "| measure | time | MB/s | ratio to s3fs cat | goal | met |", "|---|---|---|---|---|---|"]
    for r in results:
        assert r.wall is not None and r.sent_down is not None
        speed = r.sent_down / MB / r.wall
        if r.value is None:
            lines.append(f"| {r.tool} | {r.wall:.2f} s | {speed:.0f} | | | |")
            continue
        met = "yes" if r.value >= GOAL else "**no**"
        lines.append(f"| {r.tool} | {r.wall:.2f} s | {speed:.0f} | {r.value:.2f}x | >= {GOAL}x | {met} |")
    return lines
