"""Offline bundles against tar (one machine): carrying a ship's data to the hub on a
disk should cost about what packing and unpacking it with tar does. ``bundle export``
writes the signed log and every object of a store into one CAR file; ``tar cf`` packs
the same files. ``bundle import`` into a fresh store verifies every block against its
SHA-256 before anything is visible; the peer is ``tar xf`` followed by ``sha256sum`` of
what it unpacked (the same check). Each runs ``reps`` times, alternating; the best run
of each counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .common import Result

GROUP = "bundle"
MB = 1_000_000


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.monotonic()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True, timeout=1200)
    return time.monotonic() - start


def run(quick: bool, workdir: Path) -> list[Result]:
    import eurec4a_nt
    from eurec4a_nt.demokit.sampledata import raw_file, sonde
    from eurec4a_nt.demokit.sites import make_sites

    size, reps = (200 * MB, 3) if quick else (500 * MB, 3)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    raw_file(data / "radar.bin", size=size, seed=5)
    for i in range(20):
        sonde(data / f"sonde-{i:02d}.nc", seed=i)
    total = sum(p.stat().st_size for p in data.iterdir())
    make_sites(workdir / "sites", ["RV-Meteor", "OPS"])
    ship = workdir / "sites" / "RV-Meteor"
    eurec4a_nt.publish(sorted(data.iterdir()), name="raw", topics="raw", store=ship, progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUREC4A_NT_")}
    env.update(EUREC4A_NT_CONFIG=str(workdir / "none.yaml"), EUREC4A_NT_CACHE=str(workdir / "cache"))
    nt = [sys.executable, "-m", "eurec4a_nt", "bundle"]
    car, tar, hub, unpacked = (workdir / "ship.car", workdir / "ship.tar", workdir / "sites" / "OPS",
                               workdir / "unpacked")
    best = {k: float("inf") for k in ("export", "tar cf", "import", "tar xf + sha256sum")}
    for _ in range(reps):
        best["tar cf"] = min(best["tar cf"], _run(["tar", "cf", str(tar), "-C", str(data), "."], env))
        best["export"] = min(best["export"], _run([*nt, "export", str(car), "--store", str(ship)], env))
        shutil.rmtree(unpacked, ignore_errors=True)
        unpacked.mkdir()
        peer = _run(["tar", "xf", str(tar), "-C", str(unpacked)], env)
        peer += _run(["sh", "-c", "sha256sum ./* > /dev/null"], env, cwd=unpacked)
        best["tar xf + sha256sum"] = min(best["tar xf + sha256sum"], peer)
        for sub in ("objects", "logs", "state"):
            shutil.rmtree(hub / sub, ignore_errors=True)
        best["import"] = min(best["import"], _run([*nt, "import", str(car), "--store", str(hub)], env))
    if eurec4a_nt.open_catalog(store=hub)["RV-Meteor"]["raw/radar.bin"].read() != (data / "radar.bin").read_bytes():
        raise RuntimeError("the imported bundle holds other bytes than were published")
    scenario = f"{GROUP}: {total // MB} MB of a ship's data (a {size // MB} MB file and 20 soundings)"
    bundle_mb = car.stat().st_size / MB
    out = []
    for ours, peer in (("export", "tar cf"), ("import", "tar xf + sha256sum")):
        out.append(Result(f"{scenario}, {ours}", peer, wall=best[peer]))
        out.append(Result(f"{scenario}, {ours}", f"eurec4a-nt bundle {ours}", wall=best[ours],
                          value=best[peer] / best[ours], goal=">= 0.5x tar",
                          note=f"speed relative to {peer}, best of {reps}; bundle {bundle_mb:.0f} MB"))
    shutil.rmtree(data)
    return out


def headline(results: list[Result]) -> list[str]:
    lines = ["## Offline bundles against tar (one machine, local disk)", "",
             "| step | eurec4a-nt | tar | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for r in results:
        if r.value is None:
            continue
        peer = next(x for x in results if x.scenario == r.scenario and x.value is None)
        met = "yes" if r.value >= 0.5 else "**no**"
        lines.append(f"| {r.tool} | {r.wall:.2f} s | {peer.wall:.2f} s ({peer.tool}) | {r.value:.2f}x "
                     f"| >= 0.5x | {met} |")
    return lines
