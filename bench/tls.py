"""Links over TLS: the first sync of the campaign data (hub -> ship) and near-time
quicklooks both ways over the same emulated satellite link, with the link in plain
HTTP, over the hub's own TLS (``serve --tls-cert``) and through nginx terminating TLS
in front of the hub. What TLS costs is the figures' difference to plain."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.testing.proxy import nginx_command, tls_proxy
from eurec4a_nt.testing.tls import Certificates, make_certificates

from . import wan
from .common import Result
from .peers import Link, Processes

MODES = ("plain", "TLS (serve --tls-cert)", "TLS (nginx in front)")


class TlsLink(Link):
    """The emulated link, dialled with https:// (the bytes it carries are TLS)."""

    @property
    def url(self) -> str:
        return super().url.replace("http://", "https://")


class TlsSites(wan.Sites):
    """Hub and ship whose link runs over TLS: the hub's own, or nginx's in front of it."""

    certs: Certificates
    proxy: bool

    def start_hub(self) -> SiteProcess:
        args = [] if self.proxy else ["--tls-cert", str(self.certs.cert), "--tls-key", str(self.certs.key)]
        self.hub = SiteProcess(self.root / wan.HUB, args=args, ca=self.certs.ca)
        self.ctx.procs.on_close(self.hub.stop)
        return self.hub.start()

    def start_link(self, outages: wan.Outages | None = None) -> tuple[SiteProcess, Link]:
        hub = self.start_hub()
        port = hub.port
        if self.proxy:
            stack = ExitStack()
            url = stack.enter_context(tls_proxy(self.root / "nginx", hub.url, self.certs.cert, self.certs.key))
            self.ctx.procs.on_close(stack.close)
            port = int(url.rsplit(":", 1)[1])
        link = TlsLink(port, wan.SAT, outages)
        link.start()
        self.ctx.procs.on_close(link.stop)
        return hub, link


def pair_for(mode: str, certs: Certificates) -> type[wan.Sites] | None:
    if mode == MODES[0]:
        return None
    return type("Pair", (TlsSites,), {"certs": certs, "proxy": mode == MODES[2]})


@contextmanager
def trusting(ca: Path) -> Iterator[None]:
    """The campaign CA trusted by this process's requests and the servers it starts."""
    old = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ.update(SSL_CERT_FILE=str(ca), REQUESTS_CA_BUNDLE=str(ca))
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(quick: bool, workdir: Path) -> list[Result]:
    settings = wan.Settings.make(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "campaign"
    if not data.exists():
        sampledata.campaign_files(data, seed=0, small_files=settings.small_files,
                                  small_total=settings.small_total, big_file=settings.big_file)
    certs = make_certificates(workdir / "certs")
    files, total = wan.tree_size(data)
    out: list[Result] = []
    with trusting(certs.ca), Processes() as procs:
        for mode in MODES:
            if mode == MODES[2] and nginx_command() is None:
                out.append(Result("TLS", mode, note="nginx is not installed: not run"))
                continue
            ctx = wan.Context(settings, workdir / mode.split()[0].lower(), procs, site_pair=pair_for(mode, certs))
            wan.log(f"tls: {mode}: initial sync ... (load average {os.getloadavg()[0]:.1f})")
            try:
                r = wan.nt_initial(ctx, data, "down", None, f"tls-{mode.split()[0].lower()}")
                r.scenario = f"TLS: first sync down ({files} files, {wan.human(total)}, 1 MB/s)"
                r.tool, r.value = mode, r.wall / r.ideal if r.wall and r.ideal else None
                out.append(r)
            except Exception as exc:  # noqa: BLE001 - reported in the table
                out.append(wan.failed("TLS: first sync down", mode, exc))
            procs.close()
            time.sleep(1)
            wan.log(f"tls: {mode}: near time ...")
            try:
                runs = wan.nt_near(ctx, settings.reps)
                for key, direction in (("down", "hub -> ship"), ("up", "ship -> hub")):
                    times, moved = runs.times[key], runs.moved[key]
                    median = statistics.median(times)
                    out.append(Result(f"TLS: new 200 KB file until held, {direction} (median of {len(times)})",
                                      mode, median, int(statistics.median(u for u, _ in moved)),
                                      int(statistics.median(d for _, d in moved)), value=median,
                                      note=f"runs {', '.join(f'{t:.2f}' for t in times)} s"))
            except Exception as exc:  # noqa: BLE001
                out.append(wan.failed("TLS: near time", mode, exc))
            procs.close()
    return out


def headline(results: list[Result]) -> list[str]:
    """First sync and near-time figures, plain against both TLS set-ups."""
    scenarios = list(dict.fromkeys(r.scenario for r in results if r.scenario.startswith("TLS:")))
    lines = ["## Links over TLS: the same emulated satellite link, plain and encrypted", "",
             "1 MB/s down, 250 KB/s up, 350 ms one way; the ship dials https:// and verifies the hub's "
             "certificate against the campaign CA.", "",
             "| figure | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
    for scenario in scenarios:
        cells = []
        for mode in MODES:
            r = next((r for r in results if r.scenario == scenario and r.tool == mode), None)
            if r is None or r.wall is None:
                cells.append("not run" if r is None else "failed")
            else:
                moved = r.sent_down if "down" in scenario or "hub -> ship" in scenario else r.sent_up
                cells.append(f"{r.wall:.2f} s, {wan.human(moved)}")
        lines.append(f"| {scenario.removeprefix('TLS: ')} | " + " | ".join(cells) + " |")
    return lines
