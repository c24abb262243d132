"""Entries: the named things a site publishes, and the rules for names and topics."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from .display import html
from .errors import BadInput, Corrupt, NotFound, NTError
from .ids import ObjectId
from .schema import SITE_PATTERN, TOPIC_PATTERN, EntryBody, StoredEntryBody, convert

SITE_RE = re.compile(SITE_PATTERN.strip("^$"))
SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")
GLOB_SEGMENT_RE = re.compile(r"[A-Za-z0-9._\-*?\[\]!]+")
TOPIC_RE = re.compile(TOPIC_PATTERN.strip("^$"))
MAX_NAME = 512
_stored = msgspec.json.Decoder(StoredEntryBody)
KINDS = ("file", "zarr", "directory")


def check_site(site: object) -> str:
    """Return ``site`` if it is a valid site name, else raise :class:`BadInput`."""
    if not isinstance(site, str) or not SITE_RE.fullmatch(site):
        raise BadInput(
            f"bad site name {site!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. RV-Meteor)"
        )
    return site


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid entry name, else raise :class:`BadInput`.

    A name is a relative POSIX path of segments made of ``[A-Za-z0-9._-]``, without
    ``.`` or ``..`` segments, empty segments, or more than 512 characters.
    """
    if not isinstance(name, str) or not name:
        raise BadInput("an entry name is required (e.g. sondes/2020-02-01T1045.nc)")
    if len(name) > MAX_NAME:
        raise BadInput(f"entry name is {len(name)} characters long; at most {MAX_NAME} allowed")
    for segment in name.split("/"):
        if segment in ("", ".", "..") or not SEGMENT_RE.fullmatch(segment):
            raise BadInput(
                f"bad entry name {name!r}: each '/'-separated part must be non-empty, "
                "not '.' or '..', and use only letters, digits, '.', '_' or '-'"
            )
    return name


def check_topics(topics: object) -> tuple[str, ...]:
    """Return topics as a sorted tuple without duplicates; raise on a bad one."""
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, (list, tuple, set, frozenset)):
        raise BadInput(f"topics must be a list of strings, not {type(topics).__name__}")
    for topic in topics:
        if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
            raise BadInput(f"bad topic {topic!r}: use lowercase letters, digits and '-'")
    return tuple(sorted(set(topics)))


def utc_now() -> str:
    """The current UTC time as ISO 8601 with a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """A dataset or file published by a site.

    ``root`` is the id of a file record (kind ``file``) or of a manifest (kinds
    ``zarr`` and ``directory``). ``site`` is not stored in the entry itself: it is
    the site whose log holds it.
    """

    name: str
    kind: str
    root: ObjectId
    size: int
    format: str
    topics: tuple[str, ...] = ()
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    published: str = ""
    site: str = ""
    #: The arguments of ``nt.open_catalog`` that reach the entry where it was published
    #: (``server="URL"``), for the code its HTML shows; not part of the entry itself.
    opened_with: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.kind not in KINDS:
            raise BadInput(f"bad entry kind {self.kind!r}: one of {', '.join(KINDS)}")
        if not isinstance(self.metadata, dict):
            raise BadInput("metadata must be a JSON object (a dict)")

    @property
    def path(self) -> str:
        """``SITE/NAME``."""
        return f"{self.site}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """The entry as it is written in a commit."""
        return {
            "name": self.name, "kind": self.kind, "root": self.root, "size": self.size,
            "format": self.format, "topics": list(self.topics),
            "description": self.description, "metadata": self.metadata,
            "published": self.published,
        }

    @classmethod
    def from_json(cls, body: Any, site: str = "", error: type[NTError] = Corrupt) -> Entry:
        """Parse an entry (as a commit or the entries API carries it); raise ``error``
        (:class:`Corrupt` by default) if it is malformed."""
        return cls.from_body(convert(body, EntryBody, f"entry of {site or 'a site'}", error=error), site, error)

    @classmethod
    def from_body(cls, body: EntryBody, site: str = "", error: type[NTError] = Corrupt) -> Entry:
        """The entry a decoded :class:`~eurec4a_nt.schema.EntryBody` describes."""
        try:
            return cls(name=body.name, kind=body.kind, root=ObjectId.parse(body.root), size=body.size,
                       format=body.format, topics=check_topics(body.topics), description=body.description,
                       metadata=body.metadata, published=body.published, site=site)
        except BadInput as exc:
            raise error(f"malformed entry of {site or 'a site'}: {exc}") from None

    @classmethod
    def from_stored(cls, text: str | bytes, site: str) -> Entry:
        """The entry stored as ``text`` (its :meth:`to_json`) by the log state, which
        took it from a commit already checked: decoded without checking its name,
        topics and root again (a third of the time of :meth:`from_body`, which counts
        when a site's index reads 100,000 entries). Its fields are set one by one in
        their order, as ``__init__`` does, so it takes no more memory than one made so."""
        body = _stored.decode(text)
        entry = object.__new__(cls)
        put = object.__setattr__
        put(entry, "name", body.name)
        put(entry, "kind", body.kind)
        put(entry, "root", str.__new__(ObjectId, body.root))
        put(entry, "size", body.size)
        put(entry, "format", body.format)
        put(entry, "topics", tuple(body.topics))
        put(entry, "description", body.description)
        put(entry, "metadata", body.metadata)
        put(entry, "published", body.published)
        put(entry, "site", site)
        put(entry, "opened_with", "")
        return entry

    def with_site(self, site: str) -> Entry:
        return replace(self, site=site)

    def _repr_html_(self) -> str | None:
        return html("entry", self)

    def matches(self, topics: Iterable[str] = (), sites: Iterable[str] = (),
                names: Iterable[str] = ()) -> bool:
        """Whether the entry is selected by any of ``topics`` (all if none), one of
        ``sites`` (any if none) and one of the ``names`` globs on ``SITE/NAME`` (any if none)."""
        return selects(topics, sites, names, self.site or "", self.name, self.topics)


def selects(topics: Iterable[str], sites: Iterable[str], names: Iterable[str],
            site: str, name: str, entry_topics: Iterable[str]) -> bool:
    """Whether a rule of ``topics``, ``sites`` and ``names`` globs selects the entry
    ``site``/``name`` with ``entry_topics`` (see :meth:`Entry.matches`)."""
    topics, sites, names = list(topics), list(sites), list(names)
    if topics and not set(topics) & set(entry_topics):
        return False
    if sites and site not in sites:
        return False
    return not names or any(fnmatch.fnmatchcase(f"{site}/{name}", p) for p in names)


def check_name_glob(glob: str) -> str:
    """``glob`` if it can select entries by ``SITE/NAME`` (parts of name characters and
    the wildcards ``*``, ``?``, ``[...]``; no empty, ``.`` or ``..`` part), else BadInput."""
    if not all(GLOB_SEGMENT_RE.fullmatch(part) and part not in (".", "..") for part in glob.split("/")):
        raise BadInput(f"bad name glob {glob!r}: SITE/NAME with the wildcards * ? [...], "
                       "e.g. RV-Meteor/quicklooks/* or */sondes/*")
    return glob


class EntryList(list[Entry]):
    """Entries published together (what ``publish`` of several paths returns)."""

    def _repr_html_(self) -> str | None:
        return html("entries", self)


def find_entry(site: str, entries: Mapping[str, Entry], rest: str) -> tuple[Entry, str]:
    """Split ``NAME[/inner/path]`` into the entry of ``site`` and the path inside it.

    The longest entry name that is a prefix (at a ``/``) wins.
    """
    parts = rest.strip("/").split("/") if rest.strip("/") else []
    for i in range(len(parts), 0, -1):
        name = "/".join(parts[:i])
        if name in entries:
            return entries[name], "/".join(parts[i:])
    raise NotFound(f"{site} has no entry {rest.strip('/')!r}")
