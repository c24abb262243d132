"""A site server's object API (``/objects``) as an :class:`~.base.ObjectStore`.

Uploads ask first which objects the server lacks and send many per request; reads
name the site whose objects they are, so a server lacking them can fetch them over
its links. Errors of the server arrive as this package's errors; a server out of
reach is :class:`~eurec4a_nt.errors.Unreachable`, with the reason in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import requests

from .. import hashtree
from ..errors import BadInput, ObjectMissing, Unreachable, from_json
from ..frames import header
from ..ids import Item, ObjectId
from .base import ObjectStore, batches, verified
from .direct import DirectReads

BATCH_BYTES = 16 << 20
#: Ids asked for URLs per request (the server's most, ``MAX_URLS``).
URLS_AT_ONCE = 256
_BATCH_COUNT = 512
#: Seconds to connect and to wait for an answer.
TIMEOUT = (10, 120)


_REASONS = (("refused", "connection refused: is the server running, on this port?"),
            ("name or service not known", "unknown host: check the name"),
            ("nodename nor servname", "unknown host: check the name"),
            ("name resolution", "unknown host: check the name, or the network"),
            ("network is unreachable", "network unreachable: is this machine online?"),
            ("no route to host", "no route to host: is this machine on the right network?"),
            ("aborted", "the connection was dropped"), ("reset", "the connection was dropped"))


def unreachable(server: str, exc: BaseException, hint: str = "") -> Unreachable | BadInput:
    """One line saying why ``server`` could not be reached and what to do, for a
    requests exception (never urllib3's internals). A malformed URL is :class:`BadInput`."""
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return BadInput(f"bad site server URL {server!r}: write http://HOST:PORT")
    if isinstance(exc, requests.exceptions.Timeout):
        reason = "no answer in time: the server or the network is slow or down"
    else:
        text = str(exc).lower()
        reason = next((why for key, why in _REASONS if key in text), type(exc).__name__)
    return Unreachable(f"cannot reach the site server at {server} ({reason}); check the URL "
                       f"(--server, server= or EUREC4A_NT_SERVER){hint}")


def raise_for(response: requests.Response) -> None:
    """Raise our error for an error answer of a site server (its JSON body, or the status)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"error": "error", "message": f"HTTP {response.status_code}: {response.text[:200]}"}
    raise from_json(body)


class HTTPStore(ObjectStore):
    """The objects of a site server. ``site`` is a hint for where missing objects live."""

    #: A server neither deletes nor lists its objects for clients.
    supports_delete = False
    supports_listing = False

    def __init__(self, server: str, session: requests.Session, site: str | None = None,
                 direct: DirectReads | None = None) -> None:
        self.server = server.rstrip("/")
        self.http = session
        self.site = site
        #: Fetches many objects at once, straight from the server's object store where it offers that.
        self.direct = direct

    def __repr__(self) -> str:
        return f"HTTPStore({self.server!r})"

    def _request(self, method: str, path: str, allow: tuple[int, ...] = (), **kwargs: Any) -> requests.Response:
        """The server's answer; its error raised as ours (but statuses in ``allow``)."""
        try:
            response = self.http.request(method, self.server + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise unreachable(self.server, exc) from None
        if response.status_code not in allow:
            raise_for(response)
        return response

    def _params(self) -> dict[str, str]:
        return {"site": self.site} if self.site else {}

    def _read(self, oid: ObjectId) -> bytes:
        return self._request("GET", f"/objects/{oid}", params=self._params()).content

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, clipped to the object's size like a slice."""
        if end <= start:
            self.require(oid)
            return b""
        response = self._request("GET", f"/objects/{oid}", params=self._params(), allow=(416,),
                                 headers={"Range": f"bytes={start}-{end - 1}"})
        if response.status_code == 416:  # the range starts at or past the end
            self.require(oid)
            return b""
        return response.content

    def get_part(self, oid: ObjectId, start: int, end: int, size: int, tree: str,
                 record: ObjectId | None = None) -> bytes:
        """The leaves holding bytes ``[start, end)`` with their proof in one request
        (``GET /objects/<id>?proof=1``, naming ``record``: a server lacking the block
        brings only those leaves), checked against ``tree``; raise :class:`Corrupt` if
        they do not match."""
        first, last = hashtree.span(size, start, end)
        named = {"record": record} if record else {}
        response = self._request("GET", f"/objects/{oid}", params={**self._params(), "proof": "1", **named},
                                 headers={"Range": f"bytes={first}-{last - 1}"})
        count, body = int(response.headers.get("X-Proof-Hashes", "0")), response.content
        proof = [body[i * 32:(i + 1) * 32] for i in range(count)]
        part = body[count * 32:]
        hashtree.verify(part, size, first, proof, tree)
        return part[start - first:end - first]

    def get_many(self, oids: list[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """With :attr:`direct`, each checked, :data:`~.direct.AT_ONCE` at a time, straight
        from the server's object store where it offers URLs (see :mod:`.direct`), asked
        for :data:`URLS_AT_ONCE` at a time just before they are used."""
        if self.direct is None:
            return super().get_many(oids)
        ids = list(dict.fromkeys(oids))
        out: list[tuple[ObjectId, bytes]] = []
        for i in range(0, len(ids), URLS_AT_ONCE):
            out += [(oid, bytes(data))  # bytes already: not copied
                    for oid, data in self.direct.get_many(ids[i:i + URLS_AT_ONCE], self.signed_urls, self._read)]
        return out

    def signed_urls(self, oids: list[ObjectId]) -> tuple[dict[ObjectId, str], int]:
        """URLs to GET ``oids`` (at most :data:`URLS_AT_ONCE`) at straight from the server's
        object store, and the seconds they are good for (``POST /objects/urls``); none
        and 0 where the server offers none (also a server without the endpoint)."""
        answer = self._request("POST", "/objects/urls", allow=(404, 405), json={"ids": oids})
        try:
            body = answer.json() if answer.status_code == 200 else {}
            given, expires = dict(body.get("urls") or {}), int(body.get("expires_in") or 0)
        except (ValueError, TypeError, AttributeError):
            return {}, 0  # an answer we cannot read offers nothing: read through the server
        urls = {oid: given[str(oid)] for oid in oids if isinstance(given.get(str(oid)), str)}
        return (urls, expires) if urls and expires > 0 else ({}, 0)

    def has(self, oid: ObjectId) -> bool:
        return not self.missing([oid])

    def missing(self, oids: Iterable[ObjectId]) -> list[ObjectId]:
        ids = list(dict.fromkeys(oids))
        out: list[ObjectId] = []
        for i in range(0, len(ids), 5000):
            answer = self._request("POST", "/objects/missing", json={"ids": ids[i:i + 5000]}).json()
            out += [ObjectId.parse(x) for x in answer["missing"]]
        return out

    def size(self, oid: ObjectId) -> int:
        response = self._request("HEAD", f"/objects/{oid}", params=self._params(), allow=(404,))
        if response.status_code == 404:  # an answer to HEAD has no body saying why
            raise ObjectMissing(f"object {oid} is not on {self.server}")
        return int(response.headers["Content-Length"])

    def _write(self, oid: ObjectId, data: bytes) -> None:
        self._request("PUT", f"/objects/{oid}", data=data)

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId:
        oid = verified(data, oid)
        self.put_many([(oid, data)])
        return oid

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        """Upload what the server lacks, in batches; each batch is durable when sent."""
        return [oid for batch in batches(items, BATCH_BYTES, _BATCH_COUNT) for oid in self._upload(batch)]

    def _upload(self, batch: list[Item]) -> list[ObjectId]:
        lacking = set(self.missing(oid for oid, _ in batch))
        send = [(oid, data) for oid, data in dict(batch).items() if oid in lacking]
        if send:
            def body() -> Iterator[bytes | memoryview]:
                for oid, data in send:
                    yield header(oid, len(data))
                    yield data
            self._request("POST", "/objects", data=body())
        return [oid for oid, _ in send]

    def delete(self, oid: ObjectId) -> None:
        raise BadInput("objects on a site server are not deleted by clients")

    def ids(self) -> Iterator[ObjectId]:
        raise BadInput("a site server does not list its objects to clients")
