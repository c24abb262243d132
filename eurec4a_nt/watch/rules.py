"""What a watched folder publishes: which files, under which names, with which topics.

A rule is parsed strictly (unknown keys and wrong types are refused) from the
``watch:`` section of a server's config file or from ``eurec4a-nt watch`` options::

    watch:
      - dir: /data/lidar
        prefix: lidar/                 # entry name = prefix + name template
        name: "{path}"                 # {path} (relative, with folders), {name}, {stem}, {suffix}, {parent}
        topics: [lidar]                # topics of every file
        topics-by-pattern:             # more topics for files matching a glob
          "*.png": [quicklook]
        include: ["*.nc", "*.png"]     # globs on the relative path (default: everything)
        exclude: ["*.partial"]         # on top of hidden files and *.part, *.tmp, *.swp, *~
        settle: 5                      # seconds a file's size and mtime must stay unchanged
        poll: false                    # poll instead of OS events (network mounts)
"""

from __future__ import annotations

import fnmatch
from pathlib import PurePosixPath
from typing import Any

import msgspec

from ..entries import check_name, check_topics
from ..errors import BadInput, NTError

#: Files never published: being written by common tools, or hidden.
ALWAYS_EXCLUDED = ("*.part", "*.tmp", "*.swp", "*~", ".*", "*/.*")
_FIELDS = ("path", "name", "stem", "suffix", "parent")


class WatchRule(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename="kebab"):
    """One watched folder."""

    dir: str
    prefix: str = ""
    name: str = "{path}"
    topics: list[str] = []
    topics_by_pattern: dict[str, list[str]] = {}
    include: list[str] = msgspec.field(default_factory=lambda: ["*"])
    exclude: list[str] = []
    settle: float = 5.0
    poll: bool = False
    interval: float = 1.0

    def __post_init__(self) -> None:
        check_topics(self.topics)
        for topics in self.topics_by_pattern.values():
            check_topics(topics)
        if not self.settle > 0 or not self.interval > 0:
            raise BadInput("watch: settle and interval must be positive numbers of seconds")
        if self.prefix and not self.prefix.endswith("/"):
            raise BadInput(f"watch: prefix {self.prefix!r} must end with '/' (e.g. lidar/)")
        try:
            self.name.format(**dict.fromkeys(_FIELDS, "x"))
        except (KeyError, IndexError, ValueError) as exc:
            raise BadInput(f"watch: bad name template {self.name!r} ({exc}); "
                           f"use {', '.join('{' + f + '}' for f in _FIELDS)}") from None

    def selects(self, relative: str) -> bool:
        """Whether the file at ``relative`` (a POSIX path below ``dir``) is published."""
        def hit(patterns: list[str] | tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(PurePosixPath(relative).name, p)
                       for p in patterns)
        return hit(self.include) and not hit(self.exclude) and not hit(ALWAYS_EXCLUDED)

    def entry_name(self, relative: str) -> str:
        """The entry name of a file; raise :class:`BadInput` if it is not a valid name."""
        p = PurePosixPath(relative)
        parent = "" if str(p.parent) == "." else str(p.parent)
        name = self.prefix + self.name.format(path=relative, name=p.name, stem=p.stem,
                                              suffix=p.suffix, parent=parent)
        return check_name(name.replace("//", "/").strip("/"))

    def topics_for(self, relative: str) -> tuple[str, ...]:
        name = PurePosixPath(relative).name
        extra = [t for pattern, topics in self.topics_by_pattern.items()
                 if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(name, pattern)
                 for t in topics]
        return check_topics([*self.topics, *extra])


def parse_rules(raw: Any, where: str = "watch") -> list[WatchRule]:
    """The rules of a ``watch:`` section (a list of mappings); raise :class:`BadInput`
    naming the first problem."""
    try:
        return msgspec.convert(raw or [], list[WatchRule], strict=True)
    except msgspec.ValidationError as exc:
        raise BadInput(f"{where}: {exc}") from None
    except NTError as exc:
        raise BadInput(f"{where}: {exc}") from None


def parse_topic_patterns(items: list[str]) -> dict[str, list[str]]:
    """``["*.png=quicklook", ...]`` (the CLI's ``--topic-for``) as a mapping."""
    out: dict[str, list[str]] = {}
    for item in items:
        pattern, sep, topic = item.rpartition("=")
        if not sep or not pattern or not topic:
            raise BadInput(f"--topic-for {item!r}: use GLOB=TOPIC, e.g. '*.png=quicklook'")
        out.setdefault(pattern, []).append(topic)
    return out
