"""What a reader opening a zarr store needs first, decided when the store is published.

A published zarr store always has consolidated metadata (zarr v3: in the root
``zarr.json``; v2: ``.zmetadata``), added here when the store has none, so opening it
reads one document. Its metadata documents and the chunks of its coordinate arrays
are small and read by every open: they are inlined in the manifest (up to
:data:`INLINE_BUDGET` bytes in all), so a reader that has the manifest can open the
dataset without another round trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Names of zarr metadata documents (v3, and v2 with its consolidated form).
METADATA = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
#: A chunk of a coordinate array is inlined up to this size; a metadata document up to
#: :data:`INLINE_DOC`.
INLINE_CHUNK = 4 << 10
INLINE_DOC = 64 << 10
#: Bytes inlined in one manifest at most; what does not fit stays an object.
INLINE_BUDGET = 256 << 10


def is_metadata(key: str) -> bool:
    return key.rsplit("/", 1)[-1] in METADATA


def _node(key: str) -> str:
    """The node path of a metadata key (``""`` for the root)."""
    return key.rpartition("/")[0]


def _docs(meta: Mapping[str, bytes]) -> dict[str, Any]:
    """The metadata documents that parse as JSON objects (others are left alone)."""
    out = {}
    for key, data in meta.items():
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict):
            out[key] = doc
    return out


def consolidated(meta: Mapping[str, bytes]) -> dict[str, bytes]:
    """Documents to add to (or replace in) a zarr store so that it has consolidated
    metadata: ``{}`` if it has them already or is not a zarr group.

    ``meta`` maps each metadata key of the store to its bytes.
    """
    docs = _docs(meta)
    root = docs.get("zarr.json")
    if root is not None and root.get("zarr_format") == 3:
        if "consolidated_metadata" in root or root.get("node_type") != "group":
            return {}
        nodes = {_node(k): d for k, d in sorted(docs.items()) if k.endswith("zarr.json") and k != "zarr.json"}
        root = {**root, "consolidated_metadata": {"kind": "inline", "must_understand": False,
                                                  "metadata": nodes}}
        return {"zarr.json": json.dumps(root, indent=2).encode()}
    if ".zgroup" in docs and ".zmetadata" not in meta:
        body = {"zarr_consolidated_format": 1,
                "metadata": {k: d for k, d in sorted(docs.items()) if k != ".zmetadata"}}
        return {".zmetadata": json.dumps(body, indent=2).encode()}
    return {}


def coordinate_arrays(meta: Mapping[str, bytes]) -> set[str]:
    """Paths of the arrays that hold coordinates: one named like a dimension of an array
    in its group, or listed in an array's ``coordinates`` attribute."""
    docs = _docs(meta)
    arrays: dict[str, tuple[list[str], str]] = {}  # path -> (dimension names, coordinates attribute)
    for key, doc in docs.items():
        name = key.rsplit("/", 1)[-1]
        attrs: dict[str, Any] = {}
        if name == "zarr.json" and doc.get("node_type") == "array":
            dims, attrs = doc.get("dimension_names") or [], doc.get("attributes") or {}
        elif name == ".zarray":
            attrs = docs.get(f"{_node(key)}/.zattrs" if _node(key) else ".zattrs", {})
            dims = attrs.get("_ARRAY_DIMENSIONS") or []
        else:
            continue
        coords = attrs.get("coordinates") if isinstance(attrs, dict) else None
        arrays[_node(key)] = ([d for d in dims if isinstance(d, str)],
                              coords if isinstance(coords, str) else "")
    found = set()
    for path, (dims, coords) in arrays.items():
        group = path.rpartition("/")[0]
        for name in [*dims, *coords.split()]:
            candidate = f"{group}/{name}" if group else name
            if candidate in arrays:
                found.add(candidate)
    return found


def opening_keys(meta: Mapping[str, bytes], sizes: Mapping[str, int]) -> list[str]:
    """Keys a reader opening the store reads first, most needed first: metadata documents,
    then the chunks of coordinate arrays. ``sizes`` maps every key of the store to its size."""
    coords = coordinate_arrays(meta)
    docs = sorted((k for k in sizes if is_metadata(k)), key=lambda k: (k.count("/"), k))
    chunks = sorted(k for k in sizes if not is_metadata(k) and any(k.startswith(f"{c}/") for c in coords))
    return [*docs, *chunks]


def inline_keys(meta: Mapping[str, bytes], sizes: Mapping[str, int]) -> list[str]:
    """The keys to inline in the manifest: :func:`opening_keys` that are small, while
    the budget lasts."""
    chosen, used = [], 0
    for key in opening_keys(meta, sizes):
        limit = INLINE_DOC if is_metadata(key) else INLINE_CHUNK
        if sizes[key] <= limit and used + sizes[key] <= INLINE_BUDGET:
            chosen.append(key)
            used += sizes[key]
    return chosen
