"""``eurec4a-nt check`` against a real site server finds deliberately broken entries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from server_kit import start

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd

pytestmark = pytest.mark.timeout(180)


def check_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eurec4a_nt", "check", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_check_finds_broken_entries(tmp_path: Path) -> None:
    server = start(tmp_path, "RV-Meteor")
    try:
        pub = {"server": server.url, "token": server.token}
        nt.publish(sd.sonde(tmp_path / "s1.nc", seed=1), name="sondes/s1.nc", topics="sondes", **pub)
        nt.publish(sd.sonde(tmp_path / "s2.nc", seed=2), name="sondes/s2.nc", topics="sondes", **pub)
        nt.publish(sd.timeseries(seed=3, hours=6), name="met/ts.zarr", topics="met", **pub)
        nt.publish(sd.blog_markdown(tmp_path / "day-1", seed=4, images=1), name="blog/day-1", topics="blog", **pub)
        broken = tmp_path / "broken.nc"
        broken.write_bytes(b"this is not netCDF at all" * 100)
        nt.publish(broken, name="sondes/broken.nc", topics="sondes", format="netcdf", **pub)
        lost = nt.publish(sd.quicklook_png(tmp_path / "ql.png", seed=5), name="ql.png", topics="quicklook", **pub)
        (server.store / lost.root.path()).unlink()  # the quicklook's file record is gone

        out = check_cmd("--server", server.url)
        assert out.returncode == 1, out.stderr
        failed = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("FAIL")]
        assert sorted(failed) == ["RV-Meteor/ql.png", "RV-Meteor/sondes/broken.nc"]
        reasons = {line.split()[1]: line.split(": ", 1)[1] for line in out.stdout.splitlines()
                   if line.startswith("FAIL")}
        assert reasons["RV-Meteor/ql.png"].startswith("Pending")  # its record cannot be read
        assert "ValueError" in reasons["RV-Meteor/sondes/broken.nc"]  # xarray cannot open it
        assert out.stdout.splitlines()[-1] == "checked 6 entries: 2 failed"

        out = check_cmd("--server", server.url, "--topic", "met", "--topic", "blog", "-v")
        assert out.returncode == 0, out.stdout + out.stderr
        assert sorted(line.split()[1] for line in out.stdout.splitlines()[:-1]) == [
            "RV-Meteor/blog/day-1", "RV-Meteor/met/ts.zarr"]

        out = check_cmd("--catalog", server.url + "/catalog.yaml", "--sample", "1", "-v")
        checked = [line.split()[1] for line in out.stdout.splitlines()[:-1]]
        assert len(checked) == 4  # one per topic: blog, met, quicklook, sondes
        assert len([c for c in checked if "sondes/" in c]) == 1
    finally:
        server.stop()
