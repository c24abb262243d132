"""The exchange's checks of what entries lack see every object stored while they run,
however many run at once and in whichever order they end (the hub of a campaign runs
many at once: a check that missed a stored object left its entries unpushed for good)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from eurec4a_nt.chunking import record_bytes
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.index import Index
from eurec4a_nt.node import Node
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.stores.base import ObjectStore
from eurec4a_nt.sync import answers
from eurec4a_nt.sync.exchange import Exchange
from eurec4a_nt.sync.reads import Reads


def file_entry(name: str) -> tuple[Entry, bytes]:
    """A file entry of 2 MiB and its record (none of it stored)."""
    record = record_bytes(os.urandom(2 << 20), list)  # blocks cut, not stored
    body = record.to_bytes()
    return Entry(name, "file", ObjectId.of(body), record.size, "binary"), body


def test_an_object_stored_while_two_checks_run_reaches_the_one_still_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, record = file_entry("quicklooks/a.png")
    second, _ = file_entry("quicklooks/b.png")
    answered = {first.root: threading.Event(), second.root: threading.Event()}
    release = {first.root: threading.Event(), second.root: threading.Event()}
    real = answers.lacking

    def held_back(entries: Iterable[Entry], store: ObjectStore) -> dict[ObjectId, list[ObjectId]]:
        """The store's answer, handed back only once the test says so (the first time)."""
        entries = list(entries)
        out = real(entries, store)
        root = entries[0].root
        if not answered[root].is_set():
            answered[root].set()
            assert release[root].wait(30)
        return out

    monkeypatch.setattr(answers, "lacking", held_back)

    async def scenario() -> dict[ObjectId, list[ObjectId]]:
        node = Node(SiteStore.init(tmp_path / "OPS", "OPS"), Index(tmp_path / "index.sqlite"))
        exchange = Exchange(node, Reads(node, lambda site: None))
        checks = [asyncio.ensure_future(exchange._lacking([e])) for e in (first, second)]
        for entry in (first, second):
            await asyncio.to_thread(answered[entry.root].wait, 30)  # both asked the store
        release[second.root].set()
        await checks[1]  # the later check ends first
        await node.put_objects([(first.root, record)])  # stored while the first still runs
        release[first.root].set()
        return await asyncio.wait_for(checks[0], 30)

    lacking = asyncio.run(scenario())
    assert first.root not in lacking[first.root]  # asked again: the root is here now
    assert lacking[first.root]  # its blocks are not
