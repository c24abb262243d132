"""The typed forms of everything that arrives from outside, and the one strict decoder.

Commits, entries, file records, manifests and the JSON bodies of the HTTP API are
decoded here, once, with msgspec: strict JSON (no ``NaN`` or ``Infinity``, no number
out of range), exact types (no ``true`` for a size, no ``1.0`` for a seq), bounded
size, length and nesting. Whatever fails raises the error class the caller names
(:class:`BadInput` for a request, :class:`Corrupt` for stored bytes,
:class:`BadCommit` for a commit) with one line saying what and where; code behind
this boundary works with typed values and does not re-check raw input.

Entries may carry fields a newer version adds (they are kept in the signed commit
and ignored here); every other struct refuses unknown fields.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
from msgspec import Meta, Struct

from .errors import BadInput, NTError, TooLarge

T = TypeVar("T")

#: Sizes, offsets and lengths: 0 .. 1 PiB.
MAX_SIZE = 1 << 50
#: Nesting of free metadata (dicts and lists inside an entry's ``metadata``).
MAX_DEPTH = 16
#: Ids in one request of the objects API.
MAX_IDS = 10_000
#: Largest checkpoint read (about 2 million entries).
MAX_CHECKPOINT = 1 << 30
#: Ranges of blocks one ``ranges`` message of a link may ask for.
MAX_RANGES = 64

SITE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TOPIC_PATTERN = "^[a-z0-9-]{1,64}$"
ID_PATTERN = "^[0-9a-f]{64}$"
NONCE_PATTERN = "^[0-9a-f]{32}$"
#: A dial's clock (``X-NT-Clock``): milliseconds since the epoch (UTC), 13 digits.
CLOCK_PATTERN = "^[1-9][0-9]{12}$"
#: Longest ``X-NT-Hello`` header a dial on a ticket or clock may carry (within common 8 KiB header limits).
MAX_HELLO_HEADER = 6144
#: A relative path inside a manifest: no empty, ``.`` or ``..`` parts, no control characters.
KEY_PATTERN = r"^(?!\.\.?(?:/|$))[^/\x00-\x1f]+(?:/(?!\.\.?(?:/|$))[^/\x00-\x1f]+)*$"

IdText = Annotated[str, Meta(pattern=ID_PATTERN)]
SiteName = Annotated[str, Meta(pattern=SITE_PATTERN)]
Topic = Annotated[str, Meta(pattern=TOPIC_PATTERN)]
Size = Annotated[int, Meta(ge=0, le=MAX_SIZE)]
Short = Annotated[str, Meta(max_length=256)]
Key = Annotated[str, Meta(pattern=KEY_PATTERN, max_length=1024)]
#: A nonce, challenge or resume ticket: 32 hex digits.
Nonce = Annotated[str, Meta(pattern=NONCE_PATTERN)]
#: A dialler's ``hello`` sent in a header (``X-NT-Hello``).
HelloHeader = Annotated[str, Meta(min_length=1, max_length=MAX_HELLO_HEADER)]


class EntryBody(Struct):
    """An entry as a commit (or the entries API) carries it."""

    name: Annotated[str, Meta(min_length=1, max_length=512)]
    kind: Literal["file", "zarr", "directory"]
    root: IdText
    size: Size
    format: Annotated[str, Meta(max_length=64)]
    topics: Annotated[list[Topic], Meta(max_length=64)] = []
    description: Annotated[str, Meta(max_length=65_536)] = ""
    metadata: dict[str, Any] = {}
    published: Short = ""


class StoredEntryBody(Struct):
    """An entry as the log state stores it (:class:`EntryBody` checked when its commit
    was applied): read back with the types alone, no pattern or length checked again."""

    name: str
    kind: str
    root: str
    size: int
    format: str
    topics: list[str] = []
    description: str = ""
    metadata: dict[str, Any] = {}
    published: str = ""


class ChangeBody(Struct, forbid_unknown_fields=True):
    """Put (with an entry) or remove one entry."""

    op: Literal["put", "remove"]
    name: Annotated[str, Meta(min_length=1, max_length=512)]
    entry: EntryBody | None = None


class CheckpointRefBody(Struct, forbid_unknown_fields=True):
    """Where a commit says a checkpoint of its log is: the seq it is the state at, and
    the file record (``root``, ``size``) holding the signed checkpoint."""

    seq: Annotated[int, Meta(ge=1, le=1 << 53)]
    root: IdText
    size: Size


class CommitBody(Struct, forbid_unknown_fields=True):
    """A signed commit of a site log."""

    site: SiteName
    seq: Annotated[int, Meta(ge=1, le=1 << 53)]
    parent: IdText | None
    time: Short
    changes: Annotated[list[ChangeBody], Meta(max_length=100_000)]
    signature: Annotated[str, Meta(max_length=512)]
    checkpoint: CheckpointRefBody | None = None


class CheckpointBody(Struct, forbid_unknown_fields=True):
    """A signed checkpoint: a site's entries (and the versions they replaced) at ``seq``,
    whose commit has id ``head``."""

    type: Literal["checkpoint"]
    site: SiteName
    seq: Annotated[int, Meta(ge=1, le=1 << 53)]
    head: IdText
    time: Short
    entries: list[EntryBody]
    previous: list[EntryBody]
    signature: Annotated[str, Meta(max_length=512)]


class BlockBody(Struct, array_like=True, forbid_unknown_fields=True):
    """``[id, offset, length]`` of one block in a file record, ``[..., tree]`` with its
    hash tree root where it is read in verified parts."""

    id: IdText
    offset: Size
    length: Annotated[int, Meta(gt=0, le=MAX_SIZE)]
    tree: IdText | None = None


class FileRecordBody(Struct, forbid_unknown_fields=True):
    """A file record object."""

    type: Literal["file"]
    size: Size
    blocks: list[BlockBody]
    sha256: IdText | None = None  # whole-file hash, in records written by earlier versions
    refs: dict[Key, str | Annotated[list[Size], Meta(min_length=2, max_length=2)]] | None = None


class RefBody(Struct, array_like=True, forbid_unknown_fields=True):
    """``[id, size]`` or ``[id, size, 1]`` (a file record) in a manifest."""

    id: IdText
    size: Size
    record: Literal[0, 1] = 0


class ManifestBody(Struct, forbid_unknown_fields=True):
    """A zarr or directory manifest object."""

    type: Literal["zarr", "directory"]
    items: dict[Key, RefBody]
    inline: dict[Key, bytes] = {}  # small values held in the manifest itself (base64)


class IdsBody(Struct, forbid_unknown_fields=True):
    """``POST /objects/missing`` and ``/objects/batch``."""

    ids: Annotated[list[IdText], Meta(max_length=MAX_IDS)]
    site: SiteName | None = None


class PrefetchBody(Struct, forbid_unknown_fields=True):
    """``POST /api/prefetch``: what a prefetch rule selects."""

    topics: Annotated[list[Topic], Meta(max_length=64)] = []
    sites: Annotated[list[SiteName], Meta(max_length=256)] = []
    names: Annotated[list[Annotated[str, Meta(min_length=1, max_length=512)]], Meta(max_length=256)] = []


class PurgeBody(Struct, forbid_unknown_fields=True):
    """``POST /api/purge``: the retention rule (see :mod:`eurec4a_nt.purge`)."""

    keep: Annotated[int, Meta(ge=0)] = 0
    keep_days: Annotated[float, Meta(ge=0)] | None = None
    dry_run: bool = False


class CommitRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/commit``: changes for the server to sign."""

    changes: Annotated[list[ChangeBody], Meta(min_length=1, max_length=10_000)]


# -- link messages and options (a peer site's words) ---------------------------------------

Ids = Annotated[list[IdText], Meta(max_length=MAX_IDS)]
Sites = Annotated[list[SiteName], Meta(max_length=256)]
Topics = Annotated[list[Topic], Meta(max_length=64)]
Heads = Annotated[dict[SiteName, Annotated[int, Meta(ge=0, le=1 << 53)]], Meta(max_length=10_000)]
Names = Annotated[list[Annotated[str, Meta(max_length=512)]], Meta(max_length=256)]


class ResumeBody(Struct, array_like=True, forbid_unknown_fields=True):
    """``[encoding, base or null, offset]``: where a cut transfer resumes."""

    encoding: Literal[0, 1, 2]
    base: IdText | None
    offset: Size


class SpanBody(Struct, array_like=True, forbid_unknown_fields=True):
    """``[start, end)`` of a record's bytes."""

    start: Size
    end: Size


class SelectionBody(Struct, forbid_unknown_fields=True):
    topics: Topics = []
    sites: Sites = []
    names: Names = []


class SubscriptionBody(Struct, forbid_unknown_fields=True):
    any: Annotated[list[SelectionBody], Meta(max_length=1000)] = []


Partials = Annotated[dict[IdText, ResumeBody], Meta(max_length=MAX_IDS)]


class LinkOptions(Struct, forbid_unknown_fields=True):
    """What a peer says of itself when a link opens: heads, subscription, resume points
    and, from a dialling peer, how it wants to be served."""

    heads: Heads | None = None  # absent until the peer says what it has
    subscribe: SubscriptionBody = msgspec.field(default_factory=SubscriptionBody)
    partials: Partials = {}
    priority: Topics = []
    essential: Topics = []
    rate: Annotated[int, Meta(gt=0, le=1 << 40)] | None = None
    bulk: bool = True
    push: Topics = []
    ticket: Nonce | None = None  # from a listener: for the next dial (only to a side taking tickets)


class TicketDial(Struct, forbid_unknown_fields=True):
    """A dial that opens on a resume ticket: the ticket (``X-NT-Ticket``) and the
    dialler's ``hello`` signing it (``X-NT-Hello``, checked by the handshake)."""

    ticket: Nonce
    hello: HelloHeader


class ClockDial(Struct, forbid_unknown_fields=True):
    """A first dial that proves its site at once: the dialler's clock (``X-NT-Clock``) and
    its ``hello`` signing it (``X-NT-Hello``, checked by the handshake)."""

    clock: Annotated[str, Meta(pattern=CLOCK_PATTERN)]
    hello: HelloHeader


class _Message(Struct, tag_field="type", forbid_unknown_fields=True):
    """A control message of a link."""


class CommitsMessage(_Message, tag="commits"):
    raws: Annotated[list[Annotated[str, Meta(max_length=4 << 20)]], Meta(max_length=10_000)]


class HeadsMessage(_Message, tag="heads"):
    heads: Heads


class SubscribeMessage(_Message, tag="subscribe"):
    any: Annotated[list[SelectionBody], Meta(max_length=1000)] = []


class LimitsMessage(_Message, tag="limits"):
    bulk: bool = True


class PushingMessage(_Message, tag="pushing"):
    roots: Ids


class WantMessage(_Message, tag="want"):
    ids: Ids
    deep: Ids = []
    site: SiteName | None = None
    hops: Annotated[int, Meta(ge=0, le=8)] = 1
    bases: Annotated[dict[IdText, IdText], Meta(max_length=MAX_IDS)] = {}
    spans: Annotated[dict[IdText, SpanBody], Meta(max_length=MAX_IDS)] = {}
    resume: Partials = {}
    leaves: bool = False
    # "class": Python keeps the field as klass
    klass: Literal["read", "essential", "bulk"] = msgspec.field(default="bulk", name="class")


class RangeBody(Struct, array_like=True, forbid_unknown_fields=True):
    """``[id, start, end)`` of a block's bytes, and for a block of a third site the file
    record naming it (``[id, start, end, record]``)."""

    id: IdText
    start: Size
    end: Size
    record: IdText | None = None


class RangesMessage(_Message, tag="ranges"):
    """The peer asks for verified parts of blocks (see :mod:`eurec4a_nt.sync.ranges`);
    with ``site``, of that third site's blocks, relayed from it."""

    ranges: Annotated[list[RangeBody], Meta(min_length=1, max_length=MAX_RANGES)]
    site: SiteName | None = None


class LackMessage(_Message, tag="lack"):
    ids: Ids
    held_at: Annotated[str, Meta(max_length=64)] = ""
    pending: bool = False


class HaveMessage(_Message, tag="have"):
    ids: Ids


class CheckpointMessage(_Message, tag="checkpoint"):
    """The peer offers its newest checkpoint of ``site``'s log (where a commit names it:
    ``seq``, file record ``root`` of ``size`` bytes) and holds back that log's commits
    until this side says (``heads``) how far it got."""

    site: SiteName
    seq: Annotated[int, Meta(ge=1, le=1 << 53)]
    root: IdText
    size: Annotated[int, Meta(ge=1, le=MAX_CHECKPOINT)]


class RefusedMessage(_Message, tag="refused"):
    """The peer cannot fetch ``site``'s data on this side's behalf, for ``reason`` (one
    line of plain text); ``null``: it can again."""

    site: SiteName
    reason: Annotated[str, Meta(pattern=r"^[^\x00-\x1f\x7f]+$", max_length=300)] | None


LinkMessage = (CommitsMessage | HeadsMessage | SubscribeMessage | LimitsMessage | PushingMessage
               | WantMessage | LackMessage | HaveMessage | CheckpointMessage | RefusedMessage | RangesMessage)


def link_message(text: str | bytes) -> dict[str, Any]:
    """A link's control message, checked against :data:`LinkMessage` (type, fields,
    bounds; spans with start <= end, ranges with start < end), as the plain dict the
    sync core reads; raise :class:`BadInput` naming what is wrong."""
    message: Any = decode(text.encode() if isinstance(text, str) else text, cast(Any, LinkMessage), "link message")
    if isinstance(message, WantMessage) and any(s.start > s.end for s in message.spans.values()):
        raise BadInput("link message: a span ends before it starts")
    if isinstance(message, RangesMessage) and any(r.start >= r.end for r in message.ranges):
        raise BadInput("link message: an empty range, or one that ends before it starts")
    return msgspec.to_builtins(message)


def decode(data: bytes, type_: type[T], what: str, *, error: type[NTError] = BadInput,
           max_bytes: int | None = None) -> T:
    """``data`` (JSON) as ``type_``; raise ``error`` saying what is wrong and where.

    Free metadata in ``type_`` is checked by :func:`check_plain`; a body over
    ``max_bytes`` raises :class:`TooLarge`.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge(f"{what} is {len(data)} bytes; at most {max_bytes} allowed")
    try:
        value = msgspec.json.decode(data, type=type_, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise error(f"{what}: {exc}") from None
    except RecursionError:
        raise error(f"{what}: nested too deeply") from None
    check_plain(value, what, error)
    return value


def convert(body: Any, type_: type[T], what: str, *, error: type[NTError] = BadInput) -> T:
    """Like :func:`decode` for a value already decoded from JSON."""
    try:
        value = msgspec.convert(body, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise error(f"{what}: {exc}") from None
    check_plain(value, what, error)
    return value


def _metadata(value: Any) -> list[dict[str, Any]]:
    """The free metadata inside a decoded value."""
    if isinstance(value, EntryBody):
        return [value.metadata]
    if isinstance(value, (CommitBody, CommitRequest)):
        return [c.entry.metadata for c in value.changes if c.entry is not None]
    return []


def check_plain(value: Any, what: str, error: type[NTError] = BadInput) -> None:
    """Raise ``error`` if free metadata inside ``value`` nests deeper than :data:`MAX_DEPTH`
    or holds a number that is not finite (``convert`` of values that did not come
    through :func:`decode`)."""
    stack: list[tuple[Any, int]] = [(m, 1) for m in _metadata(value)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise error(f"{what}: metadata holds {item}, which JSON cannot carry")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth >= MAX_DEPTH:
            raise error(f"{what}: metadata nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def canonical(body: Any) -> bytes:
    """The canonical JSON bytes of ``body`` (sorted keys, no spaces, UTF-8)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
