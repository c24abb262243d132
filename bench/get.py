"""``eurec4a-nt get`` against ``curl`` on the same site server and file (one machine,
loopback): a laptop copying an entry should not wait much longer than a plain HTTP
download. Both write the file to disk; ``get`` starts cold (an empty block cache) and
checks every block against its id. Each tool runs ``reps`` times, alternating; the best
run of each counts. Python's bytecode cache is allowed, as on an installed machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import Result

GROUP = "get"
MB = 1_000_000


def _run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    return time.monotonic() - start


def run(quick: bool, workdir: Path) -> list[Result]:
    import eurec4a_nt
    from eurec4a_nt.demokit.sampledata import raw_file
    from eurec4a_nt.demokit.sites import SiteProcess, make_sites

    size, reps = (200 * MB, 3) if quick else (500 * MB, 5)
    workdir.mkdir(parents=True, exist_ok=True)
    make_sites(workdir / "sites", ["OPS"])
    data = raw_file(workdir / "big.bin", size=size, seed=3)
    eurec4a_nt.publish(data, name="big.bin", store=workdir / "sites" / "OPS", progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUREC4A_NT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(EUREC4A_NT_CONFIG=str(workdir / "none.yaml"), EUREC4A_NT_CACHE=str(workdir / "cache"))
    with SiteProcess(workdir / "sites" / "OPS", env={"EUREC4A_NT_LOG": "warning"}) as server:
        url = f"{server.url}/data/OPS/big.bin"
        get = [sys.executable, "-m", "eurec4a_nt", "get", "OPS/big.bin", str(workdir / "got.bin"),
               "--server", server.url, "-q"]
        _run(get, env)  # writes the bytecode cache, warms the page cache
        runs: dict[str, list[float]] = {"curl": [], "eurec4a-nt": []}
        outputs = [str(workdir / name) for name in ("cache", "curl.bin", "got.bin")]
        for _ in range(reps):  # each writes a new file (overwriting one costs freeing its pages)
            subprocess.run(["rm", "-rf", *outputs], check=True)
            runs["curl"].append(_run(["curl", "-sS", "-o", str(workdir / "curl.bin"), url], env))
            subprocess.run(["rm", "-rf", *outputs], check=True)
            runs["eurec4a-nt"].append(_run(get, env))
        best = {tool: min(times) for tool, times in runs.items()}
        print("get runs:", {tool: [round(t, 2) for t in times] for tool, times in runs.items()}, flush=True)
    if (workdir / "got.bin").read_bytes() != data.read_bytes():
        raise RuntimeError("eurec4a-nt get wrote other bytes than were published")
    for path in ("big.bin", "got.bin", "curl.bin"):
        (workdir / path).unlink(missing_ok=True)
    scenario = f"{GROUP}: copy a {size // MB} MB file entry to disk"
    ratio = best["curl"] / best["eurec4a-nt"]
    return [Result(scenario, "curl", wall=best["curl"], sent_down=size),
            Result(scenario, "eurec4a-nt", wall=best["eurec4a-nt"], sent_down=size, value=ratio,
                   goal=">= 0.7x curl", extra={"goal_min": 0.7},
                   note=f"speed relative to curl, best of {reps}, cold block cache")]


def headline(results: list[Result]) -> list[str]:
    lines = ["## get: a file entry to disk, against curl (one machine, loopback)", "",
             "| measure | eurec4a-nt | curl | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for r in results:
        if r.tool != "eurec4a-nt" or r.value is None:
            continue
        peer = next(x for x in results if x.scenario == r.scenario and x.tool == "curl")
        met = "yes" if r.value >= 0.7 else "**no**"
        lines.append(f"| {r.scenario.removeprefix(GROUP + ': ')} | {r.wall:.2f} s | {peer.wall:.2f} s "
                     f"| {r.value:.2f}x | >= 0.7x | {met} |")
    return lines
