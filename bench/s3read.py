"""A large file entry read through a site server whose store is on S3 (a moto server on
loopback), against s3fs reading the same block objects straight from the same moto
server in the same run: moto is slow itself, so only the ratio means something.

moto runs in a process of its own. The entry is incompressible seeded bytes, published
into a store whose ``objects:`` are in the bucket (about 1 MiB content-defined blocks). Timed, each ``reps`` times,
alternating, the best run counting:

- s3fs ``cat`` of every block object of the entry in one call (s3fs fetches them
  concurrently: its best plain use), and one ``cat_file`` after the other;
- ``curl`` of ``/data/SITE/NAME`` from the server (every block checked against its id
  before it is sent), and of a Range of half the entry from its middle;
- direct reads (the server runs with ``--direct-reads``): ``nt://`` ``cat_file`` of the
  whole entry with a fresh block cache (URLs from the server, blocks fetched 8 at a time
  straight from moto, each checked against its id, kept in the cache on disk), and the
  same fetch of every block in memory alone (``HTTPStore.get_many``, no cache);

once with moto answering at once, and once with each request to it waiting 20 ms first
(about the first-byte latency of a cloud object store), where reading one block after
the other costs most.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from .common import Result, timer

if TYPE_CHECKING:
    from eurec4a_nt.ids import ObjectId

GROUP = "s3read"
MB = 1_000_000
SITE = "MPI"
GOAL = 0.5


#: Seconds each request to moto waits before it is answered, per scenario: none (moto on
#: loopback), and about the first-byte latency of a cloud object store.
LATENCIES = (0.0, 0.02)

#: moto's server, each request first waiting the seconds written in the file ``argv[1]``
#: (read per request, so publishing goes fast and reads then wait).
_MOTO = """
import sys, time
from pathlib import Path
from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

latency, answer = Path(sys.argv.pop(1)), DomainDispatcherApplication.__call__

def delayed(self, environ, start_response):
    time.sleep(float(latency.read_text() or 0))
    return answer(self, environ, start_response)

DomainDispatcherApplication.__call__ = delayed
server.main(sys.argv[1:])
"""


@contextmanager
def moto_process(latency: Path) -> Iterator[str]:
    """A moto S3 server in a process of its own (not sharing a GIL with the s3fs reads
    it is measured against), each request waiting the seconds in the file ``latency``;
    yields its endpoint URL."""
    from eurec4a_nt.demokit.sites import free_port

    latency.write_text("0")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _MOTO, str(latency), "-H", "127.0.0.1", "-p", str(port)],
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
    return _timed(lambda: subprocess.run(["curl", "-sSf", "-o", os.devnull, *args, url], check=True, timeout=900))


def _nt_read(server: str, cache: Path, size: int) -> float:
    """Seconds ``nt://`` takes to read the whole entry through a fresh block cache."""
    from eurec4a_nt.fs import NTFileSystem

    shutil.rmtree(cache, ignore_errors=True)
    fs = NTFileSystem(server=server, cache=str(cache), skip_instance_cache=True)
    direct = fs.backend.direct  # type: ignore[attr-defined]
    with timer() as elapsed:
        got = len(fs.cat_file(f"nt://{SITE}/big.bin"))
    assert got == size and direct.through == 0, (got, direct.straight, direct.through)
    shutil.rmtree(cache)
    return elapsed[0]


def _direct_blocks(server: str, ids: list[ObjectId]) -> float:
    """Seconds to fetch every block straight from the bucket into memory, each checked."""
    from eurec4a_nt.stores.direct import DirectReads
    from eurec4a_nt.stores.http import HTTPStore

    direct = DirectReads(server)
    objects = HTTPStore(server, requests.Session(), site=SITE, direct=direct)
    elapsed = _timed(lambda: objects.get_many(ids))
    assert direct.straight == len(set(ids)) and direct.through == 0
    return elapsed


def _timed(action: Callable[[], object]) -> float:
    with timer() as elapsed:
        action()
    return elapsed[0]


def run(quick: bool, workdir: Path) -> list[Result]:
    import s3fs

    import eurec4a_nt
    from eurec4a_nt.demokit.sampledata import raw_file
    from eurec4a_nt.demokit.sites import SiteProcess
    from eurec4a_nt.entries import Entry
    from eurec4a_nt.manifests import blocks_of, entry_ref
    from eurec4a_nt.sitestore import SiteStore
    from eurec4a_nt.stores.fsspec import FsspecStore
    from eurec4a_nt.testing.s3 import new_bucket, s3_env, s3_options

    size, reps = (128 * MB, 2) if quick else (320 * MB, 3)
    workdir.mkdir(parents=True, exist_ok=True)
    latency = workdir / "latency"
    with moto_process(latency) as endpoint:
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
        assert isinstance(entry, Entry) and isinstance(store.objects, FsspecStore)
        blocks = blocks_of(entry_ref(entry), store.objects.get)
        paths = [store.objects._path(oid) for oid, _, _ in blocks]
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))
        results = []
        with SiteProcess(store.path, args=["--direct-reads"], env={**env, "EUREC4A_NT_LOG": "warning"}) as server:
            url = f"{server.url}/data/{SITE}/big.bin"
            half = f"bytes={size // 4}-{size // 4 + size // 2 - 1}"
            _curl(url, "-r", f"0-{MB}")  # the server's first request warms its entry state
            for wait in LATENCIES:
                latency.write_text(str(wait))
                runs: dict[str, list[float]] = {"s3fs cat": [], "s3fs cat_file": [], "curl": [], "curl range": [],
                                                "nt direct": [], "direct blocks": []}
                for _ in range(reps):
                    runs["s3fs cat"].append(_timed(lambda: fs.cat(paths)))
                    runs["s3fs cat_file"].append(_timed(lambda: [fs.cat_file(p) for p in paths]))
                    runs["curl"].append(_curl(url))
                    runs["curl range"].append(_curl(url, "-H", f"Range: {half}"))
                    runs["nt direct"].append(_nt_read(server.url, workdir / "cache", size))
                    runs["direct blocks"].append(_direct_blocks(server.url, [oid for oid, _, _ in blocks]))
                print(f"s3read runs, {wait * 1000:.0f} ms per request:",
                      {k: [round(t, 2) for t in v] for k, v in runs.items()}, flush=True)
                scenario = (f"{GROUP}: a {size // MB} MB file entry ({len(blocks)} blocks) from moto S3, "
                            f"{wait * 1000:.0f} ms per request")
                results += _results(scenario, runs, size)
    return results


def _results(scenario: str, runs: dict[str, list[float]], size: int) -> list[Result]:
    best = {k: min(v) for k, v in runs.items()}
    direct, reps = best["s3fs cat"], len(runs["curl"])
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
        Result(scenario, "nt:// cat_file, direct reads (fresh block cache on disk)", wall=best["nt direct"],
               sent_down=size, value=direct / best["nt direct"], goal=f">= {GOAL}x s3fs cat",
               extra={"goal_min": GOAL},
               note=f"best of {reps}; {size / MB / best['nt direct']:.0f} MB/s; speed relative to s3fs cat"),
        Result(scenario, "direct reads of every block into memory (HTTPStore.get_many)",
               wall=best["direct blocks"], sent_down=size, value=direct / best["direct blocks"],
               goal=f">= {GOAL}x s3fs cat", extra={"goal_min": GOAL},
               note=f"best of {reps}; {size / MB / best['direct blocks']:.0f} MB/s; speed relative to s3fs cat"),
    ]


def headline(results: list[Result]) -> list[str]:
    lines = ["## s3read: a large entry through a hub on S3 or straight from its bucket, against s3fs on the same "
             "objects", "",
             "One moto S3 server on loopback holds the blocks; the ratio is a read's speed "
             "over s3fs's `cat` of every block object (concurrent) in the same run: through the "
             "server (curl), or straight from the bucket with URLs the server hands out "
             "(`--direct-reads`). With 20 ms per request, moto answers as late as a cloud object "
             "store begins to.", "",
             "| S3 latency | measure | time | MB/s | ratio to s3fs cat | goal | met |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        assert r.wall is not None and r.sent_down is not None
        speed = r.sent_down / MB / r.wall
        wait = r.scenario.rsplit(", ", 1)[1].removesuffix(" per request")
        if r.value is None:
            lines.append(f"| {wait} | {r.tool} | {r.wall:.2f} s | {speed:.0f} | | | |")
            continue
        met = "yes" if r.value >= GOAL else "**no**"
        lines.append(f"| {wait} | {r.tool} | {r.wall:.2f} s | {speed:.0f} | {r.value:.2f}x | >= {GOAL}x | {met} |")
    return lines
