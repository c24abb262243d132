"""What every benchmark scenario shares: results, the results table, machine facts."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

HERE = Path(__file__).parent
PLOTS = HERE / "plots"


@dataclass
class Result:
    """One row of the results table."""

    scenario: str
    tool: str
    wall: float | None = None          # seconds
    sent_up: int | None = None         # bytes over the link, site -> hub
    sent_down: int | None = None       # bytes over the link, hub -> site
    ideal: float | None = None         # seconds, or bytes, as the scenario defines
    goal: str = ""
    value: float | None = None         # the figure the goal is about
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio_to_ideal(self) -> float | None:
        return self.wall / self.ideal if self.wall is not None and self.ideal else None


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    start = time.monotonic()
    try:
        yield out
    finally:
        out.append(time.monotonic() - start)


class Sampler:
    """Calls :meth:`sample` every 20 ms in a thread while in a ``with`` block;
    :attr:`peak` is the largest value it returned."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(0.02)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(35)


def tool_version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return "not installed"
    try:
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (text.stdout or text.stderr).strip().splitlines()[0] if (text.stdout or text.stderr) else "unknown"


def machine() -> list[str]:
    """Lines describing the machine and the versions compared."""
    import eurec4a_nt

    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        f"- eurec4a-nt {eurec4a_nt.__version__}; {tool_version(['rsync', '--version'])}; "
        f"{tool_version(['syncthing', '--version'])}; {tool_version(['nginx', '-v'])}",
        f"- command: `{' '.join(['python -m bench', *sys.argv[1:]])}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "B":
        for u in ("B", "KB", "MB", "GB"):
            if abs(value) < 1000 or u == "GB":
                return f"{value:.0f} {u}" if u == "B" else f"{value:.1f} {u}"
            value /= 1000
    return f"{value:.2f}{unit}"


def table(results: list[Result]) -> list[str]:
    """The results as a Markdown table."""
    lines = ["| scenario | tool | wall | up | down | ratio to ideal | goal | value | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.tool} | {_fmt(r.wall, ' s')} | {_fmt(r.sent_up, 'B')} | "
            f"{_fmt(r.sent_down, 'B')} | {_fmt(r.ratio_to_ideal, 'x')} | {r.goal} | "
            f"{'' if r.value is None else f'{r.value:.3g}'} | {r.note} |")
    return lines


def write_results(results: list[Result], path: Path, headline: list[str]) -> None:
    """Write ``bench/results.md``."""
    body = ["# Benchmark results", "", *machine(), "", *headline, "", "## All figures", "",
            *table(results), ""]
    plots = sorted(PLOTS.glob("*.png")) if PLOTS.exists() else []
    if plots:
        body += ["## Bytes over the link over time", ""]
        body += [f"![{p.stem}](plots/{p.name})" for p in plots]
    path.write_text("\n".join(body) + "\n")


def update_section(path: Path, group: str, results: list[Result], headline: list[str]) -> None:
    """Put one group's results into an existing ``bench/results.md`` between markers,
    leaving every other figure as it was (``python -m bench --only GROUP``)."""
    start, end = f"<!-- bench:{group} -->", f"<!-- /bench:{group} -->"
    section = "\n".join([start, *headline, "", *machine(), "", *table(results), end])
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
