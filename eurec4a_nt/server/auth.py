"""Tokens: who may write to a site server (and read, when reads are private).

Tokens are random strings shown once by ``eurec4a-nt token create``; the server keeps
only their SHA-256 in ``<store>/tokens.yaml``. A request presents one as
``Authorization: Bearer <token>`` (or ``?token=`` for a browser link).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import yaml

from ..errors import BadInput, Forbidden, Unauthorized

SCOPES = ("read", "write")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The tokens file of a store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cached: tuple[tuple[int, int], list[dict[str, object]]] | None = None

    def _load(self) -> list[dict[str, object]]:
        """The tokens in the file, re-read only when the file changed (so a token made
        by ``eurec4a-nt token create`` works at once, without parsing YAML per request)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cached is None or self._cached[0] != stamp:
            body = yaml.safe_load(self.path.read_text()) or {}
            self._cached = (stamp, list(body.get("tokens") or []))
        return self._cached[1]

    def create(self, name: str, scope: str = "write") -> str:
        """Make a new token and return it (it is not stored in clear)."""
        if scope not in SCOPES:
            raise BadInput(f"bad scope {scope!r}: one of {', '.join(SCOPES)}")
        token = "nt_" + secrets.token_urlsafe(24)
        tokens = list(self._load())
        tokens.append({"name": name, "scope": scope, "sha256": _digest(token),
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({"tokens": tokens}, f, sort_keys=False)
        os.replace(tmp, self.path)
        return token

    def scope(self, token: str | None) -> str | None:
        """The scope of a token, or None if it is unknown."""
        if not token:
            return None
        digest = _digest(token)
        for entry in self._load():
            if hmac.compare_digest(str(entry.get("sha256", "")), digest):
                return str(entry.get("scope", "read"))
        return None

    def require(self, token: str | None, scope: str) -> None:
        """Raise 401 without a token, 403 with a wrong one or one lacking ``scope``."""
        if not token:
            raise Unauthorized(f"this needs a {scope} token: pass token= or set EUREC4A_NT_TOKEN "
                               "(create one with 'eurec4a-nt token create' on the server)")
        have = self.scope(token)
        if have is None:
            raise Forbidden("unknown token: check EUREC4A_NT_TOKEN against 'eurec4a-nt token create'")
        if scope == "write" and have != "write":
            raise Forbidden("this token may only read; publishing needs a write token")
