"""Seeded generators of EUREC4A-like sample data for the demo, the tests and the benchmarks.

Every function is deterministic: the same arguments give the same bytes (with the same
numpy, zlib and HDF5 libraries). netCDF files are written with h5netcdf and no
compression, so block-level dedup and delta transfer behave as on real campaign data.
Only numpy, xarray, h5netcdf and the standard library are used.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import xarray as xr

_SONDE_VARS = {  # name: (units, long_name, standard_name)
    "time": (None, "time since launch", "time"),
    "p": ("Pa", "air pressure", "air_pressure"),
    "ta": ("K", "air temperature", "air_temperature"),
    "rh": ("1", "relative humidity", "relative_humidity"),
    "q": ("kg kg-1", "specific humidity", "specific_humidity"),
    "u": ("m s-1", "eastward wind", "eastward_wind"),
    "v": ("m s-1", "northward wind", "northward_wind"),
    "wspd": ("m s-1", "wind speed", "wind_speed"),
    "wdir": ("degree", "wind direction", "wind_from_direction"),
    "lat": ("degree_north", "latitude", "latitude"),
    "lon": ("degree_east", "longitude", "longitude"),
}
_SONDE_LEVEL_BYTES = 8 * (len(_SONDE_VARS) + 1)  # float64 variables plus the alt coordinate
_SONDE_OVERHEAD = 17_000  # HDF5 metadata of a sonde file, measured
_SURFACE = {  # name: (units, long_name, standard_name, mean, diurnal amplitude, noise)
    "ta": ("K", "air temperature", "air_temperature", 299.5, 0.8, 0.15),
    "rh": ("%", "relative humidity", "relative_humidity", 76.0, -5.0, 1.5),
    "p": ("Pa", "air pressure", "air_pressure", 101350.0, 60.0, 8.0),
    "wspd": ("m s-1", "wind speed", "wind_speed", 8.0, 1.0, 0.8),
    "lwp": ("kg m-2", "liquid water path",
            "atmosphere_mass_content_of_cloud_liquid_water", 0.0, 0.0, 0.01),
}
_GATES = 30.0 * np.arange(1, 501)  # cloud radar range gates (m)
_RADIOSONDE_PLATFORMS = ("RV-Meteor", "RV-Ronald-Brown", "RV-Atalante", "RV-MS-Merian", "BCO")
_QUICKLOOKS = ("BCO_cloud-radar", "HALO_HAMP-radar", "RV-Meteor_ceilometer", "ATR_lidar")


def _sonde_levels(nbytes: int) -> int:
    """The number of levels that makes a sonde file about ``nbytes`` long."""
    return max(16, (nbytes - _SONDE_OVERHEAD) // _SONDE_LEVEL_BYTES)


def _segment(z: np.ndarray, bottom: float, top: float) -> np.ndarray:
    """How far each height reaches into the layer [bottom, top]."""
    return np.clip(z, bottom, top) - bottom


def _write_profile(path, rng, *, alt, speed, ascending, platform, launch_time, title) -> Path:
    """Write one trade-wind sounding at heights ``alt`` (m); ``speed`` is the fall/rise rate."""
    n = alt.size
    noise = rng.standard_normal((5, n))
    zi = 1800.0 + 400.0 * rng.random()  # trade inversion base
    ta = (300.0 + rng.normal(0, 0.5) - 9.8e-3 * _segment(alt, 0, 700)
          - 5.5e-3 * _segment(alt, 700, zi) + 1e-2 * _segment(alt, zi, zi + 200)
          - 6.5e-3 * _segment(alt, zi + 200, 16500) + 2e-3 * _segment(alt, 16500, np.inf)
          + 0.1 * noise[0])
    rh = np.where(alt < zi, 0.75 + 0.15 * np.minimum(alt / 700, 1.0),
                  0.15 + 0.4 * np.exp(-(alt - zi) / 3000.0))
    rh = np.clip(rh + 0.02 * noise[1], 0.01, 1.0)
    g_over_rt = 9.80665 / (287.05 * ta)
    p = (101300.0 + rng.normal(0, 100)) * np.exp(-np.concatenate(
        [[0.0], np.cumsum(0.5 * (g_over_rt[1:] + g_over_rt[:-1]) * np.diff(alt))]))
    e = rh * 611.2 * np.exp(17.67 * (ta - 273.15) / (ta - 29.65))
    q = 0.622 * e / (p - 0.378 * e)
    u = -8.0 + rng.normal(0, 1) + 12.0 * (1 - np.exp(-alt / 6000.0)) + 0.4 * noise[2]
    v = rng.normal(0, 1) * np.exp(-alt / 3000.0) + 2.0 * np.sin(alt / 2500.0) + 0.4 * noise[3]
    dt = np.diff(alt) / (speed * (1 + 0.05 * np.abs(noise[4, 1:])))
    rise = np.concatenate([[0.0], np.cumsum(dt)])
    time = rise if ascending else rise[-1] - rise

    def drift(wind):
        along = np.concatenate([[0.0], np.cumsum(wind[1:] * dt)])
        return along if ascending else along[-1] - along

    lat = 13.3 + rng.uniform(-1, 1) + drift(v) / 111_000.0
    lon = -57.7 + rng.uniform(-1, 1) + drift(u) / (111_000.0 * math.cos(math.radians(13.3)))
    values = {"time": time, "p": p, "ta": ta, "rh": rh, "q": q, "u": u, "v": v,
              "wspd": np.hypot(u, v), "wdir": (270.0 - np.degrees(np.arctan2(v, u))) % 360.0,
              "lat": lat, "lon": lon}
    # h5netcdf directly: twice as fast as xarray's writer, which matters for many small files
    with h5netcdf.File(path, "w") as nc:
        nc.dimensions = {"alt": n}
        nc.attrs.update({"title": title, "campaign": "EUREC4A", "platform": platform,
                         "launch_time": launch_time, "Conventions": "CF-1.8",
                         "source": "sample data from eurec4a_nt.demokit.sampledata"})
        nc.create_variable("alt", ("alt",), "f8", data=alt).attrs.update(
            {"units": "m", "long_name": "geopotential altitude", "standard_name": "altitude"})
        for name, (units, long_name, standard_name) in _SONDE_VARS.items():
            nc.create_variable(name, ("alt",), "f8", data=values[name]).attrs.update(
                {"units": units or f"seconds since {launch_time}", "long_name": long_name,
                 "standard_name": standard_name})
    return Path(path)


def sonde(path, *, seed: int, platform: str = "RV-Meteor",
          launch_time: str = "2020-02-01T10:45:00", levels: int | None = None) -> Path:
    """Write a radiosonde level-2 netCDF4 file (dimension ``alt``) and return its path.

    Without ``levels`` the number of levels comes from the seed, making files of
    0.12-2.8 MB (log-uniform); each level adds 96 bytes to about 17 kB of metadata.
    """
    rng = np.random.default_rng([seed, 1])
    size = math.exp(rng.uniform(math.log(120e3), math.log(2.8e6)))
    levels = levels or _sonde_levels(int(size))
    alt = np.linspace(15.0, rng.uniform(25e3, 31e3), levels)
    return _write_profile(path, rng, alt=alt, speed=5.0, ascending=True, platform=platform,
                          launch_time=launch_time, title="EUREC4A radiosonde level 2")


def dropsonde(path, *, seed: int, platform: str = "HALO",
              launch_time: str = "2020-02-01T10:45:00") -> Path:
    """Write a dropsonde level-2 netCDF4 file (800-950 levels, 94-108 kB); return its path."""
    rng = np.random.default_rng([seed, 2])
    alt = np.linspace(5.0, rng.uniform(9.8e3, 10.3e3), int(rng.integers(800, 950)))
    return _write_profile(path, rng, alt=alt, speed=11.0, ascending=False, platform=platform,
                          launch_time=launch_time, title="EUREC4A dropsonde level 2")


def _colormap(x: np.ndarray) -> np.ndarray:
    """A viridis-like colormap: values in [0, 1] to 8-bit RGB."""
    anchors = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98],
                        [253, 231, 37]], float)
    where = np.linspace(0, 1, len(anchors))
    return np.stack([np.interp(x, where, anchors[:, c]) for c in range(3)], -1).astype(np.uint8)


def _quicklook_pixels(seed: int, width: int, height: int) -> np.ndarray:
    """A cloud-radar time-height plot with axes, colorbar and an LWP-like curve."""
    rng = np.random.default_rng([seed, 3])
    img = np.full((height, width, 3), 248, np.uint8)
    left, right, top, bottom = width // 10 + 2, width // 8 + 4, height // 12 + 2, height // 8 + 2
    ph, pw = height - top - bottom, width - left - right
    x = np.linspace(0, 1, pw)
    y = np.linspace(1, 0, ph)[:, None]
    phase = rng.uniform(0, 2 * np.pi, 3)
    cloud_top = (0.3 + 0.12 * np.sin(9 * x + phase[0]) + 0.08 * np.sin(23 * x + phase[1])
                 + 0.5 * np.exp(-((x - rng.uniform(0.2, 0.8)) / 0.04) ** 2))
    inside = np.clip((y - 0.1) / np.maximum(cloud_top - 0.1, 1e-3), 0, 1)
    field = np.where((y > 0.1) & (y < cloud_top), 0.5 + 0.35 * np.sin(np.pi * inside), 0.12)
    img[top:top + ph, left:left + pw] = _colormap(field + rng.normal(0, 0.06, (ph, pw)))
    bar = slice(width - right + right // 3, width - right // 4)
    img[top:top + ph, bar] = _colormap(np.linspace(1, 0, ph))[:, None, :]
    img[top:top + ph + 1, left - 1] = 0
    img[top + ph, left - 1:left + pw] = 0
    for tick in range(0, pw, max(pw // 6, 1)):
        img[top + ph:top + ph + 4, left + tick] = 0
    curve = top + ph * (0.15 + 0.05 * np.sin(5 * x + phase[2]) + 0.01 * rng.standard_normal(pw))
    curve = np.clip(curve, top, top + ph - 1).astype(int)
    for col in range(pw - 1):
        low, high = sorted((curve[col], curve[col + 1]))
        img[low:high + 1, left + col] = 255
    return img


def _png(pixels: np.ndarray, title: str) -> bytes:
    """Encode 8-bit RGB pixels as a PNG (filter type 0 on every row) with a Title text."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    height, width, _ = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"tEXt", b"Title\0" + title.encode("latin-1", "replace"))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def quicklook_png(path, *, seed: int, width: int = 600, height: int = 360, title: str = "",
                  target_bytes: int | None = None) -> Path:
    """Write a quicklook PNG (8-bit RGB, about 200 kB at the default 600x360) and return its path.

    With ``target_bytes`` the size is rescaled until the file is within 5 % of the target
    (at least about 4 kB: images are never smaller than 48x32).
    """
    size = 0.93 * width * height  # estimate: the noise makes the size follow the area
    for _ in range(5):
        if target_bytes:
            scale = math.sqrt(target_bytes / size)
            width, height = max(48, round(width * scale)), max(32, round(height * scale))
        data = _png(_quicklook_pixels(seed, width, height), title)
        size = len(data)
        if not target_bytes or abs(size / target_bytes - 1) < 0.05:
            break
    Path(path).write_bytes(data)
    return Path(path)


def _pdf_text(lines: list[str], x: int, y: int, size: int) -> bytes:
    escaped = [s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for s in lines]
    shown = " T* ".join(f"({s}) Tj" for s in escaped)
    return f"BT /F1 {size} Tf {size + 4} TL {x} {y} Td {shown} ET\n".encode("latin-1", "replace")


def _pdf_page(rng, title: str, number: int, pages: int) -> bytes:
    """The content stream of one flight-plan page: the image and track first, then waypoints."""
    page = _pdf_text([title, f"EUREC4A research flight, page {number + 1} of {pages}"],
                     50, 790, 16) + b"0.5 w 50 740 m 545 740 l S 50 60 m 545 60 l S\n"
    if number == 0:  # the circle flown around the dropsonde array, over the satellite image
        circle = " ".join(f"{300 + 80 * math.cos(a):.1f} {230 + 80 * math.sin(a):.1f} "
                          + ("m" if a == 0 else "l") for a in np.linspace(0, 2 * np.pi, 37))
        return (page + b"q 400 0 0 300 100 80 cm /Im1 Do Q\n1 0 0 RG 2 w " + circle.encode()
                + b" S\n" + _pdf_text(["GOES-16 visible image and planned circle"], 100, 400, 11))
    rows = ["WP    lat      lon       FL    time (UTC)"]
    for k in range(int(rng.integers(18, 30))):
        lat, lon = 13.3 + rng.uniform(-1, 1), 57.7 + rng.uniform(-1, 1)
        rows.append(f"WP{k + 1:02d}  {lat:.2f}N  {lon:.2f}W  FL{int(rng.integers(5, 45)) * 10:03d}"
                    f"  {int(rng.integers(10, 20)):02d}:{int(rng.integers(0, 60)):02d}Z")
    return page + _pdf_text(rows, 60, 720, 10)


def planning_pdf(path, *, seed: int, pages: int = 3, title: str = "Flight plan",
                 target_bytes: int | None = None) -> Path:
    """Write a flight-plan PDF 1.4 (text pages plus an uncompressed satellite-like image).

    The size is ``target_bytes`` (within a few kB) or else from the seed, 1.1-1.9 MB.
    """
    rng = np.random.default_rng([seed, 4])
    target = target_bytes or int(rng.integers(1_100_000, 1_900_000))
    contents = [_pdf_page(rng, title, k, pages) for k in range(pages)]
    iw = 512
    ih = max(16, (target - sum(map(len, contents)) - 600 - 300 * pages) // (3 * iw))
    coarse = rng.uniform(40, 230, (ih // 16 + 1, iw // 16, 1))
    pixels = np.repeat(np.repeat(coarse, 16, 0), 16, 1)[:ih] + rng.normal(0, 12, (ih, iw, 3))
    image = np.clip(pixels, 0, 255).astype(np.uint8).tobytes()

    def stream(dictionary: bytes, data: bytes) -> bytes:
        return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)

    kids = " ".join(f"{5 + 2 * k} 0 R" for k in range(pages)).encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                      b"/DeviceRGB /BitsPerComponent 8" % (iw, ih), image)]
    for k, content in enumerate(contents):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       b"<< /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> "
                       b"/Contents %d 0 R >>" % (6 + 2 * k))
        objects.append(stream(b"", content))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)  # entries are exactly 20 bytes: offset, generation, "n", space, newline
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n" % (len(objects) + 1, xref)
    out += b"%%EOF\n"
    Path(path).write_bytes(out)
    return Path(path)


_BLOG_SENTENCES = (
    "The trades were steady from the east at about eight metres per second.",
    "HALO flew its circles at 10 km and dropped a sonde every few minutes.",
    "Small cumulus topped out just below the inversion near two kilometres.",
    "The ATR sampled cloud base while the P-3 profiled the boundary layer.",
    "A band of sugar clouds organised into flowers during the afternoon.",
    "The radiosonde team launched every four hours from the aft deck.",
    "The cloud radar at the Barbados Cloud Observatory saw light rain showers.",
    "Ocean gliders and saildrones kept measuring the warm layer near the surface.",
)


def blog_markdown(directory, *, seed: int, images: int = 2,
                  image_bytes: int | None = None) -> Path:
    """Write a blog post folder (``index.md`` of about 1-2 kB and ``figure-N.png`` quicklooks).

    ``image_bytes`` is passed to :func:`quicklook_png` as ``target_bytes``. Returns the folder.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 5])
    day = int(rng.integers(1, 40))
    lines = [f"# EUREC4A campaign blog, day {day}", ""]
    for k in range(images):
        picked = rng.choice(len(_BLOG_SENTENCES), size=4, replace=False)
        lines += [" ".join(_BLOG_SENTENCES[i] for i in picked), ""]
        name = f"figure-{k + 1}.png"
        caption = f"Quicklook {k + 1} of day {day}"
        quicklook_png(folder / name, seed=int(rng.integers(2**31)), title=caption,
                      target_bytes=image_bytes)
        lines += [f"![{caption}]({name})", ""]
    (folder / "index.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def raw_file(path, *, size: int, seed: int) -> Path:
    """Write exactly ``size`` bytes: a header line, then incompressible seeded bytes.

    The data is streamed in 1 MiB pieces, so memory use does not grow with ``size``.
    """
    rng = np.random.default_rng([seed, 6])
    header = f"EUREC4A raw instrument data, seed {seed}, {size} bytes\n".encode()[:size]
    with open(path, "wb") as out:
        out.write(header)
        out.writelines(rng.bytes(min(1 << 20, size - done))
                       for done in range(len(header), size, 1 << 20))
    return Path(path)


def timeseries(*, seed: int, hours: int = 24, start: str = "2020-01-20T00:00",
               freq_minutes: int = 10, variables=("ta", "rh", "lwp")) -> xr.Dataset:
    """A BCO-like dataset: surface ``variables`` (of ta, rh, p, wspd, lwp) over ``time``
    plus cloud-radar ``dbz`` and ``vm`` over ``time`` x ``height`` (500 gates).

    Each time step is computed from its own seed (``seed``, step index), so the values at
    a time do not depend on ``hours``. One day of 10-minute steps is about 1.2 MB.
    """
    unknown = set(variables) - set(_SURFACE)
    if unknown:
        raise ValueError(f"unknown variables {sorted(unknown)}; known: {sorted(_SURFACE)}")
    steps = hours * 60 // freq_minutes
    per_step = len(_SURFACE) + 2 + 2 * _GATES.size  # surface, cloud and radar noise
    noise = np.array([np.random.default_rng([seed, 7, i]).standard_normal(per_step)
                      for i in range(steps)]).reshape(steps, per_step)
    surface, cloud, radar = np.split(noise, [len(_SURFACE), len(_SURFACE) + 2], axis=1)
    phase = np.random.default_rng([seed, 8]).uniform(0, 2 * np.pi, 2)
    h = np.arange(steps) * freq_minutes / 60
    diurnal = np.sin(2 * np.pi * h / 24 + phase[0])
    cloudiness = 0.5 * np.sin(2 * np.pi * h / 5 + phase[1]) + 0.3 * diurnal + 0.3 * cloud[:, 0]
    base = 650.0 + 60.0 * cloud[:, 1]
    depth = np.where(cloudiness > 0, 300 + 2500 * cloudiness**2, 0.0)
    rel = (_GATES - base[:, None]) / (depth[:, None] + 1)
    inside = (rel >= 0) & (rel <= 1)
    dbz = np.where(inside, -45 + 35 * np.sin(np.pi * np.clip(rel, 0, 1)) * np.minimum(
        cloudiness, 1)[:, None] + 3 * radar[:, :_GATES.size], np.nan)
    vm = np.where(inside, -0.3 - 0.05 * (dbz + 45) + 0.3 * radar[:, _GATES.size:], np.nan)
    data: dict[str, tuple[Any, Any, dict[str, str]]] = {}
    for k, (name, (units, long_name, standard_name, mean, amp, std)) in enumerate(
            _SURFACE.items()):
        value = mean + amp * diurnal + std * surface[:, k]
        if name == "lwp":
            value = np.clip(value + 8e-5 * depth, 0, None)
        if name in variables:
            data[name] = ("time", value, {"units": units, "long_name": long_name,
                                          "standard_name": standard_name})
    data["dbz"] = (("time", "height"), dbz, {"units": "dBZ", "long_name": "radar reflectivity",
                                              "standard_name": "equivalent_reflectivity_factor"})
    data["vm"] = (("time", "height"), vm, {"units": "m s-1", "long_name": "mean Doppler velocity"})
    time = (np.datetime64(start, "m") + np.arange(steps) * np.timedelta64(freq_minutes, "m"))
    ds = xr.Dataset(data, coords={
        "time": ("time", time.astype("datetime64[ns]"), {"standard_name": "time"}),
        "height": ("height", _GATES, {"units": "m", "standard_name": "height"})},
        attrs={"title": "BCO surface meteorology and cloud radar (sample data)",
               "campaign": "EUREC4A", "platform": "BCO"})
    ds["time"].encoding = {"units": f"minutes since {start}", "dtype": "int64"}
    return ds


def grow_netcdf(path, *, seed: int, days: int) -> Path:
    """(Re)write ``path`` with :func:`timeseries` of ``days`` days (about 1.2 MB a day).

    The file is replaced atomically; with ``days + 1`` it holds the same values plus a day.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    timeseries(seed=seed, hours=24 * days).to_netcdf(partial, engine="h5netcdf")
    os.replace(partial, path)
    return path


def campaign_files(directory, *, seed: int = 0, small_files: int = 300,
                   small_total: int = 6_500_000, big_file: int = 8 << 20) -> list[Path]:
    """Write the benchmark's initial-sync data set and return the paths written.

    ``small_files`` files (radiosondes in ``sondes/``, quicklooks in ``quicklooks/``, a few
    blog posts of ``index.md`` plus a figure in ``blog/``) total about ``small_total``
    bytes (within 10 % while the mean file is above about 12 kB), and ``raw/`` holds one
    file of exactly ``big_file`` bytes. Each file's size is drawn around the mean still
    needed, so the total corrects itself as files are written.
    """
    root = Path(directory)
    for sub in ("sondes", "quicklooks", "blog", "raw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 9])
    posts = min(small_files // 2, max(1, small_files // 50))
    sondes = (small_files - 2 * posts) // 3
    quicklooks = small_files - 2 * posts - sondes
    kinds = ["post"] * posts + ["sonde"] * sondes + ["quicklook"] * quicklooks
    rng.shuffle(kinds)
    written: list[Path] = []
    bytes_left, files_left = small_total, small_files
    for i, kind in enumerate(kinds):
        when = np.datetime64("2020-01-20T00:00") + np.timedelta64(144 * i, "m")
        stamp = np.datetime_as_string(when, unit="m").replace("-", "").replace(":", "")
        target = max(2_000, int(bytes_left / files_left * min(rng.lognormal(0, 0.4), 2.5)))
        child = int(rng.integers(2**31))
        if kind == "sonde":
            platform = _RADIOSONDE_PLATFORMS[int(rng.integers(len(_RADIOSONDE_PLATFORMS)))]
            new = [sonde(root / "sondes" / f"EUREC4A_{platform}_sonde_L2_{stamp}.nc", seed=child,
                         platform=platform, launch_time=str(when.astype("datetime64[s]")),
                         levels=_sonde_levels(target))]
        elif kind == "quicklook":
            name = _QUICKLOOKS[int(rng.integers(len(_QUICKLOOKS)))]
            new = [quicklook_png(root / "quicklooks" / f"{name}_{stamp}.png", seed=child,
                                 title=f"{name} {when}", target_bytes=target)]
        else:
            post = blog_markdown(root / "blog" / stamp, seed=child, images=1, image_bytes=target)
            new = sorted(post.iterdir())
        written += new
        bytes_left -= sum(p.stat().st_size for p in new)
        files_left -= len(new)
    written.append(raw_file(root / "raw" / f"BCO_lidar_raw_{seed}.bin", size=big_file, seed=seed))
    return written
