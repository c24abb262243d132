"""Background work on the event loop that nobody awaits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Future[Any]] = set()


def spawn(work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Run ``work`` in the background: a reference is kept until it is done (so it is
    not garbage-collected mid-way) and a failure is logged, never lost."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("background work failed: %r", task.exception())


def consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a future nobody may await, so none is logged as lost."""
    if not future.cancelled():
        future.exception()
