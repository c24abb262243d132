"""Settings from outside (config files, links files, keyrings, command-line options),
parsed once and strictly into typed values.

Keys are spelled as their command-line options (``read-token``, ``cache-cap``). An
unknown key, a value of the wrong type or a missing file raises :class:`BadInput`
naming the key (or option) and the fix; nothing behind this module re-checks them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import msgspec
import yaml

from .entries import check_site, check_topics
from .errors import BadInput
from .products import PRODUCT_NAME, name_pattern
from .sizes import parse_size
from .sync.config import DEFAULT_ESSENTIAL, DEFAULT_PRIORITY, LinkConfig
from .watch.rules import WatchRule


def server_url(url: str, where: str = "server") -> str:
    """``url`` without a trailing slash; :class:`BadInput` unless it is http(s)://HOST[:PORT]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(f"{where} {url!r} is not a site server URL (write http://HOST:PORT)")
    return url.rstrip("/")


T = TypeVar("T")


class Size(int):
    """A byte count, written ``250KB``, ``1.5 MiB`` (decimal KB = 1000 B) or a number."""


class Strict(msgspec.Struct, forbid_unknown_fields=True, rename="kebab", kw_only=True):
    """A settings mapping: unknown keys are refused."""


class Rate(Strict):
    """Bandwidth caps of a link, bytes per second."""

    up: Size | None = None
    down: Size | None = None


class LinkSettings(Strict):
    """One entry of a ``links:`` list (see :mod:`eurec4a_nt.sync.config`)."""

    url: str
    push: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    lazy: bool = True
    rate: Rate = msgspec.field(default_factory=Rate)
    budget: Size | None = None
    essential: tuple[str, ...] = DEFAULT_ESSENTIAL
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    compress: bool = True

    def __post_init__(self) -> None:
        self.url = server_url(self.url, "url")
        for key in ("push", "prefetch"):
            try:
                setattr(self, key, check_topics(getattr(self, key)))
            except BadInput as exc:
                raise ValueError(f"{key}: {exc}") from None

    def config(self) -> LinkConfig:
        """The link as the sync layer runs it."""
        return LinkConfig(url=self.url, push=self.push, prefetch=self.prefetch, names=self.names,
                          lazy=self.lazy, up_rate=self.rate.up, down_rate=self.rate.down,
                          budget=self.budget, essential=self.essential, priority=self.priority,
                          compress=self.compress)


class LinksFile(Strict):
    """A links file (``serve --links``)."""

    links: list[LinkSettings] = []


#: Bounds of a server's read-ahead window (``read-ahead``): bytes of blocks one read from
#: an object store holds in memory at most.
MIN_READ_AHEAD, MAX_READ_AHEAD = 1 << 20, 1 << 30
#: Seconds a URL for a direct read is good for (``direct-reads-expiry``), by default and
#: at most (S3 signs for at most 7 days).
DIRECT_READS_EXPIRY, MAX_DIRECT_READS_EXPIRY = 900, 7 * 24 * 3600
#: Seconds a connection may take to send a whole request head, and stay idle between
#: requests (``head-timeout``): a client sending its head a byte at a time (slowloris)
#: is closed after it. Streamed uploads, long polls and links, once their head is in,
#: are not bound.
HEAD_TIMEOUT = 60
#: Seconds a body read whole (JSON, a form, one object) may take to arrive
#: (``body-timeout``): a client sending it a byte at a time is answered 408 after it.
BODY_TIMEOUT = 120
#: The longest either timeout may be set to.
MAX_TIMEOUT = 3600


class ServerSettings(Strict):
    """A site server's settings: its ``--config`` file and command-line options."""

    site: str | None = None
    store: str | None = None
    local: str | None = None
    host: str = "127.0.0.1"
    port: int = msgspec.field(default=8047)
    read_token: bool = False
    cache_cap: Size | None = None
    pin: list[str] = []
    links: list[LinkSettings] = []
    keyring: str | None = None
    public_url: str | None = None
    watch: list[WatchRule] = []
    tls_cert: str | None = None
    tls_key: str | None = None
    ca_file: str | None = None
    read_ahead: Size | None = None
    direct_reads: bool = False
    direct_reads_expiry: int = DIRECT_READS_EXPIRY
    head_timeout: int = HEAD_TIMEOUT
    body_timeout: int = BODY_TIMEOUT

    def __post_init__(self) -> None:
        for name, seconds in (("head-timeout", self.head_timeout), ("body-timeout", self.body_timeout)):
            if not 1 <= seconds <= MAX_TIMEOUT:
                raise ValueError(f"{name} {seconds} s is out of range: use 1 to {MAX_TIMEOUT} seconds")
        if self.read_ahead is not None and not MIN_READ_AHEAD <= self.read_ahead <= MAX_READ_AHEAD:
            raise ValueError(f"read-ahead {self.read_ahead} bytes is out of range: use 1MiB to 1GiB")
        if not 1 <= self.direct_reads_expiry <= MAX_DIRECT_READS_EXPIRY:
            raise ValueError(f"direct-reads-expiry {self.direct_reads_expiry} s is out of range: use 1 to "
                             f"{MAX_DIRECT_READS_EXPIRY} seconds (7 days, the longest S3 signs for)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls-cert and tls-key go together: give both, or neither for plain HTTP")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is out of range: use 1-65535")
        check_topics(self.pin)


class ClientSettings(Strict):
    """The user's config file (``~/.config/eurec4a-nt/config.yaml`` or EUREC4A_NT_CONFIG)."""

    store: str | None = None
    server: str | None = None
    token: str | None = None
    cache: str | None = None
    cache_cap: Size | None = None


class KeyringSite(Strict, rename=None):
    """One site of a keyring file."""

    public_key: str
    urls: list[str] = []


class KeyringFile(Strict):
    """A keyring file: ``sites: {NAME: {public_key, urls}}``."""

    sites: dict[str, KeyringSite] = {}


class ProductRule(Strict, omit_defaults=True):
    """One product of a site's product map (see :mod:`eurec4a_nt.products`)."""

    pattern: str
    description: str = ""

    def __post_init__(self) -> None:
        name_pattern(self.pattern)  # ValueError saying what is wrong with it


class StoreFile(Strict, rename=None, omit_defaults=True):
    """A site store's own ``config.yaml``; ``products`` is the product map of its site,
    ``products_of`` those of other sites whose entries it holds (a hub's)."""

    site: str | None = None
    objects: str | None = None
    logs: str | None = None
    storage_options: dict[str, Any] = {}
    products: dict[str, ProductRule] = {}
    products_of: dict[str, dict[str, ProductRule]] = {}

    def __post_init__(self) -> None:
        if self.site in self.products_of:
            raise ValueError(f"products_of: {self.site} is this store's site: put its map under products")
        for site, products in (("", self.products), *self.products_of.items()):
            if site:
                try:
                    check_site(site)
                except BadInput as exc:
                    raise ValueError(f"products_of: {exc}") from None
            for name in products:
                if not PRODUCT_NAME.fullmatch(name):
                    raise ValueError(f"product name {name!r}: use a letter, then letters, digits, '_' or '-'")


# -- parsing -----------------------------------------------------------------------------


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Size:
        return Size(parse_size(value))
    raise NotImplementedError(kind)


_HINTS = {"bool": "write true or false, without quotes", "int": "write a whole number, without quotes",
          "str": "write text (quote it if it looks like a number or true/false)",
          "array": "write a list, e.g. [a, b]", "object": "write a mapping of keys to values"}
_PROBLEM = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`|]*)[^`]*`, got `(?P<got>[^`]*)`")


_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _plain(kind: Any) -> Any:
    """``kind`` without ``| None``."""
    args = [a for a in get_args(kind) if a is not type(None)]
    return args[0] if get_origin(kind) in (Union, UnionType) and args else kind


def _inner(kind: Any, field: str | None) -> Any:
    """The type of the key ``field`` of the struct ``kind``, or (``field`` None) of an
    item of the list or mapping ``kind``; None where there is none."""
    kind = _plain(kind)
    if field is not None:
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            return next((f.type for f in msgspec.structs.fields(kind) if f.encode_name == field), None)
        return None
    return get_args(kind)[-1] if get_args(kind) else None


def _fields_at(schema: type, path: str) -> list[str]:
    """The keys a mapping at ``path`` (``.links[0].rate``, as msgspec says it) may hold
    in ``schema``."""
    kind: Any = schema
    for field, _ in _STEP.findall(path):
        kind = _inner(kind, field or None)
    kind = _plain(kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(kind)]
    return []


def _named(at: str, body: object, schema: type) -> str:
    """``at`` with each mapping's refused value (``products[...]``, as msgspec says it)
    named by its key (``products.sondes``), found by converting the values one by one."""
    out, value, kind = "", body, schema
    for field, index in _STEP.findall(at):
        kind = _inner(kind, field or None)
        if field:
            out, value = f"{out}.{field}", value.get(field) if isinstance(value, dict) else None
        elif index != "...":
            out += f"[{index}]"
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            refused = None
            for key, item in (value.items() if isinstance(value, dict) and kind is not None else ()):
                try:
                    msgspec.convert(item, kind, dec_hook=_dec_hook)
                except msgspec.ValidationError:
                    refused = key
                    break
            if refused is None:
                return at
            out, value = f"{out}.{refused}", value[refused]  # type: ignore[index]
    return out


def _key_name(path: str, option: bool) -> str:
    key = path.lstrip(".")
    return f"--{key}" if option else key


def refusal(exc: msgspec.ValidationError, schema: type, where: str, option: bool = False,
            body: object = None) -> BadInput:
    """A :class:`BadInput` saying which key of ``where`` (read as ``body``) is wrong
    and how to fix it."""
    match = _PROBLEM.match(str(exc))
    what, at = (match.group("what"), match.group("at") or "") if match else (str(exc), "")
    known, at = _fields_at(schema, at), _named(at, body, schema)
    unknown = _UNKNOWN.fullmatch(what)
    if unknown:
        key = unknown.group("key")
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return BadInput(f"{where + ': ' if where else ''}unknown "
                        f"{'option' if option else 'key'} {_key_name(at + '.' + key, option)!r} ({fix})")
    expected = _EXPECTED.search(what)
    hint = f" ({_HINTS[expected.group('want')]})" if expected and expected.group("want") in _HINTS else ""
    if what.startswith("Object missing required field"):
        hint = " (add it)"
    label = f"{_key_name(at, option)!r}: " if at else ""
    return BadInput(f"{where + ': ' if where else ''}{label}{what}{hint}")


def parse(body: object, schema: type[T], where: str, option: bool = False) -> T:
    """``body`` (decoded YAML or collected options) as ``schema``.

    Raises :class:`BadInput` naming ``where`` and the wrong key.
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadInput(f"{where} must be a mapping of keys to values, not {type(body).__name__}")
    try:
        return msgspec.convert(body, schema, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise refusal(exc, schema, where, option, body) from None


def size_setting(value: object, where: str) -> int:
    """A size setting (``2GB``, ``500 MiB``, ``1000``) in bytes; :class:`BadInput` naming ``where``."""
    try:
        return parse_size(value)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None


def existing(path: str | Path, what: str, fix: str = "check the path") -> Path:
    """``path`` if it is a file; else :class:`BadInput` naming ``what`` (an option or key)
    and ``fix``."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{what} {p}: no such file ({fix})")
    return p


def load(path: str | Path, schema: type[T], what: str, *, missing_ok: bool = False) -> T:
    """Read the YAML file ``path`` strictly as ``schema``; ``what`` names it in errors
    (``"config file"``, ``"--links"``).

    A missing file is the schema's defaults with ``missing_ok``, else :class:`BadInput`;
    so are YAML that does not parse and any key or type the schema refuses.
    """
    p = Path(path)
    if missing_ok and not p.exists():
        return parse({}, schema, what)
    try:
        text = existing(p, what).read_text()
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(f"{what} {p} is not valid YAML: {getattr(exc, 'problem', None) or exc}{at}") from None
    return parse(body, schema, f"{what} {p}")
