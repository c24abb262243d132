"""Tests for the seeded sample-data generators."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
import xarray as xr

from eurec4a_nt.demokit import sampledata as sd


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, payload) chunks of a PNG, checking signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        chunks.append((kind, payload))
        pos += 12 + length
    assert pos == len(data)
    return chunks


@pytest.mark.timeout(60)
def test_sonde_is_deterministic_netcdf_with_cf_attributes(tmp_path):
    a = sd.sonde(tmp_path / "a.nc", seed=3)
    b = sd.sonde(tmp_path / "b.nc", seed=3)
    c = sd.sonde(tmp_path / "c.nc", seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert a.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    with xr.open_dataset(a, engine="h5netcdf") as ds:
        assert ds.attrs["campaign"] == "EUREC4A"
        assert ds.attrs["platform"] == "RV-Meteor"
        assert ds.attrs["launch_time"] == "2020-02-01T10:45:00"
        units = {"ta": "K", "p": "Pa", "rh": "1", "u": "m s-1", "v": "m s-1", "wspd": "m s-1",
                 "lat": "degree_north", "lon": "degree_east"}
        for name, unit in units.items():
            assert ds[name].attrs["units"] == unit
            assert ds[name].attrs["standard_name"] and ds[name].attrs["long_name"]
        assert ds.time.dtype.kind == "M" and ds.time[0] == np.datetime64("2020-02-01T10:45:00")
        assert all(ds[name].encoding.get("compression") is None for name in ds.variables)
        ta, alt = ds.ta.values, ds.alt.values
        assert 295 < ta[0] < 305 and 180 < ta.min() < 210
        below, above = ta[(alt > 1000) & (alt < 1500)], ta[(alt > 2600) & (alt < 3000)]
        assert below.mean() > above.mean()
        assert np.all(np.diff(ds.p.values) < 0) and 99_000 < ds.p.values[0] < 103_000
        assert ds.rh.values[alt < 1000].mean() > 0.7 > ds.rh.values[alt > 4000].mean()
        assert np.allclose(np.hypot(ds.u, ds.v), ds.wspd)


@pytest.mark.timeout(60)
def test_sonde_and_dropsonde_sizes(tmp_path):
    sizes = [sd.sonde(tmp_path / f"{seed}.nc", seed=seed).stat().st_size for seed in range(8)]
    assert all(100_000 <= size <= 3_000_000 for size in sizes)
    assert len(set(sizes)) > 1
    forced = sd.sonde(tmp_path / "forced.nc", seed=0, levels=500)
    with xr.open_dataset(forced, engine="h5netcdf") as ds:
        assert ds.sizes["alt"] == 500
    drop = sd.dropsonde(tmp_path / "drop.nc", seed=1)
    assert 80_000 <= drop.stat().st_size <= 130_000
    with xr.open_dataset(drop, engine="h5netcdf") as ds:
        assert ds.attrs["platform"] == "HALO"
        assert ds.time.values[0] > ds.time.values[-1]  # falls: the top is launched first


@pytest.mark.timeout(60)
def test_quicklook_png_parses_and_is_deterministic(tmp_path):
    a = sd.quicklook_png(tmp_path / "a.png", seed=1, width=300, height=200, title="BCO radar")
    b = sd.quicklook_png(tmp_path / "b.png", seed=1, width=300, height=200, title="BCO radar")
    c = sd.quicklook_png(tmp_path / "c.png", seed=2, width=300, height=200, title="BCO radar")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    chunks = _png_chunks(a.read_bytes())
    assert [kind for kind, _ in chunks] == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, color) == (300, 200, 8, 2)
    assert chunks[1][1] == b"Title\0BCO radar"
    raw = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    pixels = np.frombuffer(raw, np.uint8).reshape(height, -1)[:, 1:].reshape(height, width, 3)
    assert tuple(pixels[0, 0]) == (248, 248, 248)  # light background
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a colormapped field


@pytest.mark.timeout(60)
def test_quicklook_png_sizes(tmp_path):
    default = sd.quicklook_png(tmp_path / "default.png", seed=5).stat().st_size
    assert 170_000 <= default <= 230_000
    for target in (8_000, 50_000, 200_000, 450_000):
        path = sd.quicklook_png(tmp_path / f"{target}.png", seed=5, target_bytes=target)
        size = path.stat().st_size
        assert abs(size / target - 1) <= 0.15, (target, size)


@pytest.mark.timeout(60)
def test_planning_pdf_structure_and_xref(tmp_path):
    path = sd.planning_pdf(tmp_path / "plan.pdf", seed=2, pages=3, title="RF07 (HALO)")
    data = path.read_bytes()
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    assert 1_000_000 <= len(data) <= 2_000_000
    assert sd.planning_pdf(tmp_path / "again.pdf", seed=2, pages=3,
                           title="RF07 (HALO)").read_bytes() == data
    assert sd.planning_pdf(tmp_path / "other.pdf", seed=3).read_bytes() != data
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF", data).group(1))
    assert data[startxref:].startswith(b"xref\n0 ")
    count = int(data[startxref:].split(b"\n")[1].split()[1])
    entries = data[startxref:].split(b"\n")[2:2 + count]
    assert entries[0] == b"0000000000 65535 f "
    for number, entry in enumerate(entries[1:], 1):
        assert len(entry) == 19 and entry.endswith(b" 00000 n ")
        assert data[int(entry[:10]):].startswith(b"%d 0 obj" % number)
    assert b"/Count 3" in data and b"/BaseFont /Helvetica" in data
    for match in re.finditer(rb"/Length (\d+) >>\nstream\n", data):
        end = match.end() + int(match.group(1))
        assert data[end:end + 10] == b"\nendstream"
    sized = sd.planning_pdf(tmp_path / "sized.pdf", seed=2, target_bytes=1_200_000)
    assert abs(sized.stat().st_size / 1_200_000 - 1) < 0.02


@pytest.mark.timeout(60)
def test_blog_markdown_references_its_images(tmp_path):
    folder = sd.blog_markdown(tmp_path / "post", seed=4, images=2)
    text = (folder / "index.md").read_text()
    assert text.startswith("# ")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["figure-1.png", "figure-2.png"]
    for name in images:
        _png_chunks((folder / name).read_bytes())
    again = sd.blog_markdown(tmp_path / "again", seed=4, images=2)
    assert all((folder / name).read_bytes() == (again / name).read_bytes()
               for name in ["index.md", *images])


@pytest.mark.timeout(60)
def test_raw_file_exact_size_and_incompressible(tmp_path):
    path = sd.raw_file(tmp_path / "raw.bin", size=3_000_001, seed=9)
    data = path.read_bytes()
    assert len(data) == 3_000_001 and data.startswith(b"EUREC4A raw")
    assert len(zlib.compress(data, 1)) > 0.99 * len(data)
    assert sd.raw_file(tmp_path / "again.bin", size=3_000_001, seed=9).read_bytes() == data
    assert sd.raw_file(tmp_path / "other.bin", size=3_000_001, seed=10).read_bytes() != data
    assert sd.raw_file(tmp_path / "tiny.bin", size=5, seed=9).stat().st_size == 5
    assert sd.raw_file(tmp_path / "empty.bin", size=0, seed=9).stat().st_size == 0


@pytest.mark.timeout(60)
def test_timeseries_values_do_not_depend_on_length():
    day = sd.timeseries(seed=7, hours=24)
    longer = sd.timeseries(seed=7, hours=25)
    assert day.sizes == {"time": 144, "height": 500}
    assert longer.sizes["time"] == 150
    xr.testing.assert_identical(longer.isel(time=slice(0, 144)), day)
    assert 1_000_000 <= day.nbytes <= 3_000_000
    assert set(day.data_vars) == {"ta", "rh", "lwp", "dbz", "vm"}
    assert day.ta.attrs["units"] == "K" and day.dbz.dims == ("time", "height")
    assert float(day.lwp.min()) >= 0 and np.isfinite(day.dbz).any()
    assert not sd.timeseries(seed=8, hours=24).equals(day)
    assert set(sd.timeseries(seed=7, hours=1, variables=("p",)).data_vars) == {"p", "dbz", "vm"}
    with pytest.raises(ValueError):
        sd.timeseries(seed=7, variables=("nope",))


@pytest.mark.timeout(60)
def test_grow_netcdf_keeps_earlier_days(tmp_path):
    path = tmp_path / "bco.nc"
    sd.grow_netcdf(path, seed=1, days=2)
    first = path.read_bytes()
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        two = ds.load()
    assert sd.grow_netcdf(tmp_path / "again.nc", seed=1, days=2).read_bytes() == first
    sd.grow_netcdf(path, seed=1, days=3)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        three = ds.load()
    assert two.sizes["time"] == 288 and three.sizes["time"] == 432
    xr.testing.assert_identical(three.isel(time=slice(0, 288)), two)
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_campaign_files_count_size_and_determinism(tmp_path):
    paths = sd.campaign_files(tmp_path / "a", seed=0)
    assert len(paths) == 301 and len(set(paths)) == 301
    assert all(p.is_file() for p in paths)
    small, raw = paths[:-1], paths[-1]
    assert raw.parent.name == "raw" and raw.stat().st_size == 8 << 20
    assert abs(sum(p.stat().st_size for p in small) / 6_500_000 - 1) <= 0.10
    top = {p.relative_to(tmp_path / "a").parts[0] for p in small}
    assert top == {"sondes", "quicklooks", "blog"}
    assert {p.suffix for p in small} == {".nc", ".png", ".md"}
    assert 1 <= sum(p.suffix == ".md" for p in small) <= 20
    other = sd.campaign_files(tmp_path / "b", seed=0, small_files=40, small_total=1_000_000,
                              big_file=1000)
    again = sd.campaign_files(tmp_path / "c", seed=0, small_files=40, small_total=1_000_000,
                              big_file=1000)
    assert len(other) == 41
    assert abs(sum(p.stat().st_size for p in other[:-1]) / 1_000_000 - 1) <= 0.10
    assert [p.relative_to(tmp_path / "b") for p in other] == \
        [p.relative_to(tmp_path / "c") for p in again]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(other, again, strict=True))
