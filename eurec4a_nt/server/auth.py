"""Tokens: who may write to a site server (and read, when reads are private).

Tokens are random strings shown once by ``eurec4a-nt token create``; the server keeps
only their SHA-256 in ``<store>/tokens.yaml``. A request presents one as
``Authorization: Bearer <token>``; a browser gets a read token as a cookie from the
login form (``POST /login``), never in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Literal

import msgspec
import yaml

from ..errors import BadInput, Forbidden, NotFound, Unauthorized
from ..settings import load

SCOPES = ("read", "write")
#: Hex digits of a token's SHA-256 that name it in ``token list`` and ``token revoke``.
ID_DIGITS = 12


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One token as the server keeps it: never the token itself."""

    name: str
    scope: Literal["read", "write"]
    sha256: str
    created: str = ""

    @property
    def id(self) -> str:
        """A short, public name of the token (the start of its SHA-256)."""
        return self.sha256[:ID_DIGITS]


class TokensFile(msgspec.Struct, forbid_unknown_fields=True):
    tokens: list[TokenRecord] = []


class Tokens:
    """The tokens file of a store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cached: tuple[tuple[int, int], list[TokenRecord]] | None = None

    def records(self) -> list[TokenRecord]:
        """The tokens in the file, re-read only when the file changed (so a token made
        or revoked by ``eurec4a-nt token`` counts at once, without parsing YAML per
        request). :class:`BadInput` if the file is damaged."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cached is None or self._cached[0] != stamp:
            self._cached = (stamp, load(self.path, TokensFile, "tokens file").tokens)
        return self._cached[1]

    def _save(self, tokens: list[TokenRecord]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({"tokens": msgspec.to_builtins(tokens)}, f, sort_keys=False)
        os.replace(tmp, self.path)

    def create(self, name: str, scope: str = "write") -> str:
        """Make a new token and return it (it is not stored in clear)."""
        if scope not in SCOPES:
            raise BadInput(f"bad scope {scope!r}: one of {', '.join(SCOPES)}")
        token = "nt_" + secrets.token_urlsafe(24)
        record = TokenRecord(name, scope, _digest(token),  # type: ignore[arg-type]
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._save([*self.records(), record])
        return token

    def revoke(self, which: str) -> TokenRecord:
        """Remove the token named ``which`` (its id, or its name if only one has it) and
        return it; from then on the server answers it 403.

        Raises :class:`NotFound` when nothing matches, :class:`BadInput` when a name is
        shared (revoke by id then).
        """
        tokens = self.records()
        hits = [t for t in tokens if t.id == which] or [t for t in tokens if t.name == which]
        if not hits:
            raise NotFound(f"no token with id or name {which!r} (see 'eurec4a-nt token list')")
        if len(hits) > 1:
            raise BadInput(f"{len(hits)} tokens are named {which!r}: revoke one by its id "
                           f"({', '.join(t.id for t in hits)})")
        self._save([t for t in tokens if t is not hits[0]])
        return hits[0]

    def scope(self, token: str | None) -> str | None:
        """The scope of a token, or None if it is unknown."""
        if not token:
            return None
        digest = _digest(token)
        for record in self.records():
            if hmac.compare_digest(record.sha256, digest):
                return record.scope
        return None

    def require(self, token: str | None, scope: str) -> None:
        """Raise 401 without a token, 403 with a wrong one or one lacking ``scope``."""
        if not token:
            raise Unauthorized(f"this needs a {scope} token: pass --token (command line) or token= (Python), "
                               "or set EUREC4A_NT_TOKEN "
                               "(create one with 'eurec4a-nt token create' on the server)")
        have = self.scope(token)
        if have is None:
            raise Forbidden("unknown token: check EUREC4A_NT_TOKEN against 'eurec4a-nt token create'")
        if scope == "write" and have != "write":
            raise Forbidden("this token may only read; publishing needs a write token")
