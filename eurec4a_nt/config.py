"""Where to find the data: a local store or a site server, the token, the block cache.

Each setting comes from, in order: the argument, the environment
(``EUREC4A_NT_STORE``, ``EUREC4A_NT_SERVER``, ``EUREC4A_NT_TOKEN``,
``EUREC4A_NT_CACHE``, ``EUREC4A_NT_CACHE_CAP``), the config file (``EUREC4A_NT_CONFIG``
or ``~/.config/eurec4a-nt/config.yaml``, keys ``store``, ``server``, ``token``,
``cache``, ``cache-cap``; any other key is refused), and finally the default: the
local store ``site-cache`` if it exists here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import NotFound

DEFAULT_STORE = "site-cache"
#: The client block cache's cap when nothing sets one.
DEFAULT_CACHE_CAP = 2_000_000_000


def config_path() -> Path:
    return Path(os.environ.get("EUREC4A_NT_CONFIG", Path.home() / ".config" / "eurec4a-nt" / "config.yaml"))


def _config_file() -> dict[str, str]:
    """The config file's settings (none if there is no file); :class:`BadInput` for an
    unknown key or a wrong value."""
    import msgspec

    from .settings import ClientSettings, load

    file = load(config_path(), ClientSettings, "config file", missing_ok=True)
    return {k: str(v) for k, v in msgspec.structs.asdict(file).items() if v is not None}


@dataclass(frozen=True)
class Settings:
    """Resolved settings: exactly one of ``store`` and ``server`` is set."""

    store: str | None
    server: str | None
    token: str | None
    cache: str
    cache_cap: int = DEFAULT_CACHE_CAP


#: What a command without a server or store says: a laptop reads from a site server.
NOTHING_CONFIGURED = ("no site server given: pass --server URL (server= in Python) or set EUREC4A_NT_SERVER; "
                      "on a site's own machine, pass --store FOLDER (or create one with 'eurec4a-nt init SITE')")


def settings(store: str | os.PathLike[str] | None = None, server: str | None = None,
             token: str | None = None, cache: str | os.PathLike[str] | None = None) -> Settings:
    """Resolve settings from arguments, environment and config file.

    Raises :class:`BadInput` for a malformed server URL or config file, and
    :class:`NotFound` when nothing names a server or store and there is no ``site-cache``
    here (saying how to name a server).
    """
    from .settings import server_url

    file = _config_file()

    def pick(arg: str | os.PathLike[str] | None, key: str) -> str | None:
        if arg is not None:
            return os.fspath(arg)
        return os.environ.get(f"EUREC4A_NT_{key.upper()}") or file.get(key)

    token = pick(token, "token")
    common = (token, cache_dir(cache, file), cache_cap(file))
    if store is not None:
        return Settings(os.fspath(store), None, *common)
    if server is not None:
        return Settings(None, server_url(server), *common)
    env_store, env_server = pick(None, "store"), pick(None, "server")
    if env_server and not env_store:
        return Settings(None, server_url(env_server, "EUREC4A_NT_SERVER"), *common)
    if not env_store and not Path(DEFAULT_STORE).is_dir():
        raise NotFound(NOTHING_CONFIGURED)
    return Settings(env_store or DEFAULT_STORE, None, *common)


def cache_dir(arg: str | os.PathLike[str] | None = None, file: Mapping[str, str] | None = None) -> str:
    """The block cache's folder: ``arg``, else EUREC4A_NT_CACHE, else the config file's
    ``cache`` (``file``: its settings when already read), else ``~/.cache/eurec4a-nt``."""
    if arg is not None:
        return os.fspath(arg)
    return (os.environ.get("EUREC4A_NT_CACHE") or (_config_file() if file is None else file).get("cache")
            or str(Path.home() / ".cache" / "eurec4a-nt"))


def save_config(**changes: object) -> Path:
    """Set keys of the user's config file (python names: ``cache_cap=...``), keeping the
    others (not its comments); return its path. :class:`BadInput` for a bad value."""
    import msgspec
    import yaml

    from .settings import ClientSettings, load, parse

    path = config_path()
    current = msgspec.to_builtins(load(path, ClientSettings, "config file", missing_ok=True))
    body = {**current, **{k.replace("_", "-"): v for k, v in changes.items()}}
    parse(body, ClientSettings, "config file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump({k: v for k, v in body.items() if v is not None}, sort_keys=False))
    tmp.replace(path)
    return path


def cache_cap(file: Mapping[str, str] | None = None) -> int:
    """The block cache's cap in bytes: EUREC4A_NT_CACHE_CAP, else the config file's
    ``cache-cap`` (``file``: its settings when already read), else 2 GB. :class:`BadInput`
    for a malformed size."""
    from .settings import size_setting

    if os.environ.get("EUREC4A_NT_CACHE_CAP"):
        return size_setting(os.environ["EUREC4A_NT_CACHE_CAP"], "EUREC4A_NT_CACHE_CAP")
    return int((_config_file() if file is None else file).get("cache_cap") or DEFAULT_CACHE_CAP)
