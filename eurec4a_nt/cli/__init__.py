"""The ``eurec4a-nt`` command: the same verbs as the Python API, plus the server.

Errors are one clear line on stderr and a non-zero exit, never a traceback
(``EUREC4A_NT_DEBUG=1`` shows it). Each family of commands is a module with its
``add_commands``: :mod:`.site` (set up and look after a site), :mod:`.entries`
(publish and read), :mod:`.holding` (prefetch, cache, bundles).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys

from .. import __version__
from ..errors import NTError
from . import entries, holding, site


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="eurec4a-nt", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in (site, entries, holding):
        family.add_commands(sub)
    return top


def _explained(exc: BaseException) -> BaseException:
    """A network error from the HTTP library as our one-line :class:`Unreachable`."""
    if not type(exc).__module__.startswith(("requests", "urllib3")):
        return exc
    from urllib.parse import urlsplit

    from ..stores.http import unreachable

    url = urlsplit(str(getattr(getattr(exc, "request", None), "url", "") or ""))
    return unreachable(f"{url.scheme}://{url.netloc}" if url.netloc else "the site server", exc)


def _stdout_gone() -> bool:
    """Whether whoever read this process's output has closed it (a pipe to ``head``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or no real stdout
        return False


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("EUREC4A_NT_LOG", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader gone shows here, not as a warning at exit
        return code
    except KeyboardInterrupt:
        return 130
    except (NTError, OSError, ValueError) as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_gone():  # quietly, as other tools under '| head'
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
            return 141  # 128 + SIGPIPE
        if os.environ.get("EUREC4A_NT_DEBUG"):
            raise
        message = " ".join(str(_explained(exc)).split())  # one line, whatever the message holds
        print(f"eurec4a-nt {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
