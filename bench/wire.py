"""Bytes on the wire: the first sync of data that does not compress (300 files of 20 KiB and
one of 8 MiB, seeded random bytes) over the emulated satellite link, eurec4a-nt beside
rsync in the same run, both directions. Wall against the ideal (data / bandwidth) and
bytes on the link against the data: what the protocol itself costs when compression
cannot hide it."""

from __future__ import annotations

import os
from pathlib import Path

from eurec4a_nt.demokit import sampledata

from . import wan
from .common import Result
from .peers import Processes

SMALL_FILES, SMALL_SIZE, BIG_SIZE = 300, 20 << 10, 8 << 20
TIME_GOAL, BYTES_GOAL = 1.05, 1.005


def incompressible_files(root: Path, small_files: int, big_size: int) -> None:
    """``small_files`` files of 20 KiB (half soundings, half quicklooks) and one raw file of
    ``big_size`` bytes, every byte seeded random."""
    for sub in ("sondes", "quicklooks", "raw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(small_files):
        sub = "sondes" if i % 2 else "quicklooks"
        sampledata.raw_file(root / sub / f"{sub}-{i:04d}.bin", size=SMALL_SIZE, seed=1000 + i)
    sampledata.raw_file(root / "raw" / "raw-0000.bin", size=big_size, seed=7)


def _rows(runs: list[Result], tool: str, scenario: str, ours: bool) -> list[Result]:
    """One row for the median run of ``runs`` (by wall), with every run's figures in its note."""
    done = [r for r in runs if r.wall is not None]
    if not done:
        return runs[:1]
    best = sorted(done, key=lambda r: r.wall or 0.0)[len(done) // 2]
    moved, total = best.extra["moved"], best.extra["total"]
    best.scenario, best.tool = scenario, tool
    best.value = best.wall / best.ideal if best.wall and best.ideal else None
    ratios = ", ".join(f"{r.wall / r.ideal:.3f}x / {r.extra['moved'] / r.extra['total']:.4f}x"
                       for r in done if r.wall and r.ideal)
    if ours and best.value is not None:
        ok = best.value <= TIME_GOAL and moved / total <= BYTES_GOAL
        best.goal = (f"<= {TIME_GOAL}x ideal and <= {BYTES_GOAL}x bytes: "
                     f"{wan.verdict(ok)}")
    best.note = (f"median of {len(done)} runs (wall / ideal, bytes / data: {ratios}); "
                 f"bytes / data {moved / total:.4f}x; " + best.note)
    return [best]


def run(quick: bool, workdir: Path) -> list[Result]:
    """Both directions, eurec4a-nt and rsync alternating; ``quick`` runs each once with less data."""
    settings = wan.Settings.make(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "incompressible"
    if not data.exists():
        incompressible_files(data, SMALL_FILES // 3 if quick else SMALL_FILES, BIG_SIZE // (2 if quick else 1))
    files, total = wan.tree_size(data)
    out: list[Result] = []
    with Processes() as procs:
        ctx = wan.Context(settings, workdir, procs)
        for direction, reps in (("down", 1 if quick else 3), ("up", 1)):
            scenario = (f"wire: first sync {direction}, incompressible ({files} files, {wan.human(total)}, "
                        f"{'1 MB/s' if direction == 'down' else '250 KB/s'})")
            runs: dict[str, list[Result]] = {wan.NT: [], wan.RSYNC: []}
            for k in range(reps):
                for tool, initial in ((wan.NT, wan.nt_initial), (wan.RSYNC, wan.rsync_initial)):
                    wan.log(f"wire: {direction} {tool} run {k + 1} (load average {os.getloadavg()[0]:.1f})")
                    try:
                        runs[tool].append(initial(ctx, data, direction, None, f"wire-{direction}-{tool}-{k}"))
                    except Exception as exc:  # noqa: BLE001 - reported in the table
                        runs[tool].append(wan.failed(scenario, tool, exc))
                    procs.close()
            for tool, results in runs.items():
                out += _rows(results, tool, scenario, tool == wan.NT)
    return out


def headline(results: list[Result]) -> list[str]:
    """Wall / ideal and bytes / data of both tools, per direction."""
    lines = ["## Bytes on the wire: first sync of incompressible data, against rsync", "",
             "1 MB/s down, 250 KB/s up, 350 ms one way; every byte of the data seeded random, so "
             "neither tool's compression helps; the median run of each tool counts.", "",
             "| figure | eurec4a-nt | rsync | goal |", "|---|---|---|---|"]
    for scenario in dict.fromkeys(r.scenario for r in results):
        cells = []
        for tool in (wan.NT, wan.RSYNC):
            r = next((r for r in results if r.scenario == scenario and r.tool == tool), None)
            if r is None or r.value is None:
                cells.append("failed" if r is not None else "not run")
                continue
            cells.append(f"{r.value:.3f}x ({r.wall:.1f} s); {r.extra['moved'] / r.extra['total']:.4f}x bytes")
        goal = next((r.goal for r in results if r.scenario == scenario and r.tool == wan.NT), "")
        lines.append(f"| {scenario.removeprefix('wire: ')} | {cells[0]} | {cells[1]} | {goal} |")
    lines += ["", "The wall runs from the link's first connection until the receiver holds every byte "
              "(verified); bytes are those of the data's direction, counted on the emulated link."]
    return lines
