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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("EUREC4A_NT_LOG", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (NTError, OSError, ValueError) as exc:
        if os.environ.get("EUREC4A_NT_DEBUG"):
            raise
        message = " ".join(str(_explained(exc)).split())  # one line, whatever the message holds
        print(f"eurec4a-nt {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
