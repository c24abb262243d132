"""Property-based fuzzing of the parsers of everything that arrives from outside: commits,
entries, file records, manifests, the JSON bodies of the API, and link messages,
options and pieces. Whatever the bytes, a
parser returns a well-formed value or raises its one error class; it never raises
anything else, and what it accepts survives a round trip."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from eurec4a_nt.chunking import Block, FileRecord
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadCommit, BadInput, Corrupt, NTError
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.keyring import SiteKey
from eurec4a_nt.log import Change, make_commit, parse_commit
from eurec4a_nt.manifests import Manifest, Ref
from eurec4a_nt.schema import CommitRequest, IdsBody, LinkOptions, PrefetchBody, canonical, decode, link_message
from eurec4a_nt.sync.wire import RAW, Piece, batch, unbatch

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "eurec4a-nt-hypothesis")  # nothing written in the tree
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
KEY = SiteKey.generate()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
ids = st.binary(min_size=1, max_size=8).map(ObjectId.of)


def dumps(value: Any) -> bytes:
    """JSON as a careless or hostile sender writes it (NaN and Infinity included)."""
    return json.dumps(value, allow_nan=True).encode()


def assert_no_bad_number(value: Any) -> None:
    """No NaN or infinity anywhere in an accepted value."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            assert_no_bad_number(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            assert_no_bad_number(item)


def entry_body(**fields: Any) -> dict[str, Any]:
    return {"name": "sondes/a.nc", "kind": "file", "root": "ab" * 32, "size": 5, "format": "netcdf",
            "topics": ["sondes"], "description": "", "metadata": {}, "published": "", **fields}


def signed(body: dict[str, Any]) -> bytes:
    body = {**body}
    body.pop("signature", None)
    body["signature"] = KEY.sign(canonical(body))
    return canonical(body)


# -- commits ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_commit_parser_on_any_bytes(raw: bytes) -> None:
    try:
        parse_commit(raw)
    except BadCommit:
        pass


@FUZZ
@given(st.sampled_from(["site", "seq", "parent", "time", "changes", "signature"]), json_values)
def test_commit_parser_on_any_field_value(field: str, value: Any) -> None:
    body = {"site": "BCO", "seq": 1, "parent": None, "time": "2020-02-01T00:00:00Z",
            "changes": [{"op": "put", "name": "sondes/a.nc", "entry": entry_body()}], field: value}
    try:
        commit = parse_commit(signed(body))
    except BadCommit:
        return
    assert isinstance(commit.seq, int) and not isinstance(commit.seq, bool) and commit.seq >= 1
    for change in commit.changes:
        if change.entry is not None:
            assert_no_bad_number(change.entry.metadata)


@FUZZ
@given(st.sampled_from(sorted(entry_body())), json_values)
def test_entries_in_commits_and_answers_are_strict(field: str, value: Any) -> None:
    body = entry_body(**{field: value})
    raw = signed({"site": "BCO", "seq": 1, "parent": None, "time": "t",
                  "changes": [{"op": "put", "name": "sondes/a.nc", "entry": body}]})
    for parse in (lambda: parse_commit(raw).changes[0].entry, lambda: Entry.from_json(body, "BCO")):
        try:
            entry = parse()
        except (BadCommit, Corrupt):
            continue
        assert entry is not None
        assert type(entry.size) is int and 0 <= entry.size <= 1 << 50
        assert isinstance(entry.metadata, dict) and all(isinstance(k, str) for k in entry.metadata)
        assert_no_bad_number(entry.metadata)
        json.dumps(entry.to_json(), allow_nan=False)  # pages, catalogs and the API can always write it


@FUZZ
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=3))
def test_a_valid_commit_with_any_bytes_changed_is_itself_or_refused(at: int, junk: bytes) -> None:
    commit = make_commit(KEY, "BCO", 1, None, [Change("put", "a.nc", Entry.from_json(entry_body(name="a.nc")))])
    raw = commit.raw
    changed = raw[:at % len(raw)] + junk + raw[at % len(raw) + len(junk):]
    try:
        again = parse_commit(changed)
    except BadCommit:
        return
    assert again.raw == changed


# -- file records and manifests ----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200) | json_values.map(dumps))
def test_record_and_manifest_parsers_on_any_bytes(raw: bytes) -> None:
    for parse in (FileRecord.from_bytes, Manifest.from_bytes):
        try:
            parse(raw)
        except Corrupt:
            pass


@FUZZ
@given(st.sampled_from(["type", "size", "sha256", "blocks"]), json_values)
def test_a_record_with_any_field_value(field: str, value: Any) -> None:
    body = {"type": "file", "size": 10, "blocks": [["ab" * 32, 0, 4], ["cd" * 32, 4, 6]], field: value}
    try:
        record = FileRecord.from_bytes(dumps(body))
    except Corrupt:
        return
    assert sum(b.length for b in record.blocks) == record.size


@FUZZ
@given(st.lists(st.tuples(ids, st.integers(min_value=1, max_value=1 << 22)), max_size=20))
def test_records_round_trip(parts: list[tuple[ObjectId, int]]) -> None:
    offset, blocks = 0, []
    for oid, length in parts:
        blocks.append(Block(oid, offset, length))
        offset += length
    record = FileRecord(offset, tuple(blocks))
    assert FileRecord.from_bytes(record.to_bytes()) == record


@FUZZ
@given(st.dictionaries(st.text(min_size=1, max_size=30), st.tuples(ids, st.integers(0, 1 << 40), st.booleans()),
                       max_size=20))
def test_manifests_accept_only_safe_keys_and_round_trip(items: dict[str, tuple[ObjectId, int, bool]]) -> None:
    manifest = Manifest("directory", {k: Ref(oid, size, record) for k, (oid, size, record) in items.items()})
    try:
        again = Manifest.from_bytes(manifest.to_bytes())
    except Corrupt:
        assert any(part in ("", ".", "..") or any(ord(c) < 32 for c in part)
                   for key in items for part in key.split("/"))
        return
    assert again == manifest
    for key in again.items:
        assert all(part not in ("", ".", "..") for part in key.split("/"))


# -- JSON bodies of the API ---------------------------------------------------------------------


@pytest.mark.parametrize("schema", [IdsBody, PrefetchBody, CommitRequest])
@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(dumps)
       | st.dictionaries(st.sampled_from(["ids", "site", "topics", "sites", "names", "changes"]), json_values,
                         max_size=3).map(dumps))
def test_api_bodies_are_typed_or_400(schema: type, raw: bytes) -> None:
    try:
        body = decode(raw, schema, "body")
    except BadInput:
        return
    except NTError as exc:  # any other error class would be a wrong status
        raise AssertionError(f"{type(exc).__name__}: {exc}") from None
    assert isinstance(body, schema)


# -- link messages, options and pieces ----------------------------------------------------------

MESSAGE_TYPES = ["commits", "heads", "subscribe", "limits", "pushing", "want", "lack", "have", "hello", "x"]
MESSAGE_FIELDS = ["raws", "heads", "any", "bulk", "roots", "ids", "deep", "site", "hops", "bases", "spans",
                  "resume", "class", "held_at", "pending"]


@FUZZ
@given(st.binary(max_size=200) | json_values.map(dumps)
       | st.builds(lambda kind, body: dumps({"type": kind, **body}), st.sampled_from(MESSAGE_TYPES),
                   st.dictionaries(st.sampled_from(MESSAGE_FIELDS), json_values | st.lists(ids), max_size=4)))
def test_link_messages_are_typed_or_refused(raw: bytes) -> None:
    try:
        body = link_message(raw)
    except BadInput:
        return
    assert body["type"] in MESSAGE_TYPES
    for key in ("ids", "deep", "roots"):
        for oid in body.get(key) or []:
            ObjectId.parse(oid)
    for start, end in (body.get("spans") or {}).values():
        assert 0 <= start <= end
    for _, _, offset in (body.get("resume") or {}).values():
        assert offset >= 0
    json.dumps(body, allow_nan=False)


@FUZZ
@given(st.dictionaries(st.sampled_from(["heads", "subscribe", "partials", "priority", "essential", "rate",
                                        "bulk", "push", "other"]), json_values, max_size=4).map(dumps))
def test_link_options_are_typed_or_refused(raw: bytes) -> None:
    try:
        options = decode(raw, LinkOptions, "options")
    except BadInput:
        return
    assert options.rate is None or (type(options.rate) is int and options.rate > 0)
    assert all(type(seq) is int and seq >= 0 for seq in (options.heads or {}).values())


@FUZZ
@given(st.binary(max_size=200))
def test_pieces_are_parsed_or_refused(raw: bytes) -> None:
    try:
        piece = Piece.unpack(b"P" + raw)
    except BadInput:
        return
    assert 0 <= piece.offset and piece.offset + len(piece.data) <= piece.total


@FUZZ
@given(st.binary(max_size=300))
def test_batches_of_pieces_are_parsed_or_refused(raw: bytes) -> None:
    try:
        unbatch(b"M" + raw)
    except BadInput:
        return


@FUZZ
@given(st.lists(st.binary(max_size=500), max_size=20))
def test_batches_round_trip(objects: list[bytes]) -> None:
    pieces = [Piece(ObjectId.of(o), RAW, None, 0, len(o), o) for o in objects]
    assert unbatch(batch(pieces)) == pieces
