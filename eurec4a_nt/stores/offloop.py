"""Store calls from async code: run on threads of their own, never on the event loop.

Object stores are synchronous (a local folder, or S3 where each call is an HTTP
request). Servers and links await :func:`call`, which runs the store call in a pool
kept for stores, so a slow store delays only the work waiting for it: the event loop
keeps answering, and work on other threads (logs, hashing) is not queued behind it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Store calls in flight at once (beyond them, calls wait for a free thread).
THREADS = 16


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="eurec4a-nt-store")


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a store thread; its result or its exception."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), functools.partial(fn, *args, **kwargs))
