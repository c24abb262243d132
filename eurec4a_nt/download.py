"""Copying a file entry from a site server to a local file (``eurec4a-nt get``) at the
speed of a plain HTTP download or better, every byte still checked against its block's id.

The file's blocks are cut into a few runs of whole blocks; each run is one Range request
in a thread of its own that reads a block, hashes it and writes it at its offset (each
step lets the other threads run), so reading, hashing and writing overlap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import requests

from .client import SiteClient
from .errors import Corrupt
from .ids import ObjectId
from .stores.http import raise_for, unreachable

#: Range requests at once (runs of blocks).
STREAMS = 4
Block = tuple[ObjectId, int, int]


def runs(blocks: Sequence[Block], count: int) -> list[list[Block]]:
    """``blocks`` (in file order) cut into at most ``count`` runs of about equal bytes."""
    total = sum(b[2] for b in blocks)
    out: list[list[Block]] = [[]]
    for block in blocks:
        if out[-1] and block[1] >= total * len(out) / count:
            out.append([])
        out[-1].append(block)
    return [run for run in out if run]


def _read_exactly(raw: object, buffer: memoryview) -> None:
    filled = 0
    while filled < len(buffer):
        n = raw.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not n:
            raise Corrupt("the server sent fewer bytes than the file holds")
        filled += n


def download(client: SiteClient, path: str, dest: Path, blocks: Sequence[Block],
             progress: Callable[[int], object] = lambda n: None) -> None:
    """Copy the file ``SITE/NAME[/KEY]`` (the server's ``/data/...``) to ``dest``, checking
    each block against ``blocks`` (``(id, offset, length)`` in order). The block cache is
    not filled (the copy is ``dest``).

    Written through ``dest.part``: on :class:`Corrupt` (bytes not matching), a dropped
    connection (:class:`Unreachable`) or a disk error, ``dest`` is left as it was.
    """
    url = f"{client.server}/data/{quote(path)}"
    tmp = dest.with_name(dest.name + ".part")
    lock = threading.Lock()

    def fetch(run: list[Block], fd: int) -> None:
        start, end = run[0][1], run[-1][1] + run[-1][2]
        headers = {"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
        with client.http.get(url, headers=headers, stream=True, timeout=(10, 120)) as response:
            raise_for(response)
            buffer = memoryview(bytearray(max(b[2] for b in run)))
            for oid, offset, length in run:
                view = buffer[:length]
                _read_exactly(response.raw, view)
                if hashlib.sha256(view).hexdigest() != oid:
                    raise Corrupt(f"{path}: bytes {offset}-{offset + length} do not match block "
                                  f"{oid[:12]}; nothing was written to {dest}")
                written = 0
                while written < length:
                    written += os.pwrite(fd, view[written:], offset + written)
                with lock:
                    progress(length)

    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, sum(b[2] for b in blocks))
        parts = runs(blocks, STREAMS)
        with ThreadPoolExecutor(max(1, len(parts)), thread_name_prefix="eurec4a-nt-get") as pool:
            for done in [pool.submit(fetch, run, fd) for run in parts]:
                done.result()
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
    except requests.RequestException as exc:
        raise unreachable(client.server, exc) from None
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
