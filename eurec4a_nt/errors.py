"""Exceptions users see. Each says what went wrong and, where it can, what to do.

Every class has an HTTP status so the server and the client map errors both ways
through one table (:data:`BY_CODE`): a class declares its ``code`` and ``status`` as
class keywords and is entered there.
"""

from __future__ import annotations

from typing import Any

BY_CODE: dict[str, type[NTError]] = {}


class NTError(Exception):
    """Base class of every error this package raises on purpose."""

    status = 500
    code = "error"

    def __init_subclass__(cls, code: str | None = None, status: int | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code
            BY_CODE[code] = cls

    def to_json(self) -> dict[str, Any]:
        """The JSON body the server sends for this error."""
        return {"error": self.code, "message": str(self)}


BY_CODE[NTError.code] = NTError


class BadInput(NTError, ValueError, code="bad-input", status=400):
    """A name, id, argument or request body is not acceptable."""


class NotFound(NTError, KeyError, code="not-found", status=404):
    """A site, entry or object does not exist here."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ObjectMissing(NotFound, code="object-missing"):
    """An object is not in this store."""


class Corrupt(NTError, code="corrupt", status=422):
    """Bytes do not match their id, or a stored file is damaged."""


class BadCommit(NTError, code="bad-commit", status=409):
    """A commit is forged, altered, out of order or from an unknown site."""


class Forked(BadCommit, code="forked"):
    """A site signed two different commits with one seq: its log forked."""


class Unauthorized(NTError, code="unauthorized", status=401):
    """A token is missing."""


class Forbidden(NTError, code="forbidden", status=403):
    """A token is wrong or lacks the right."""


class TooLarge(NTError, code="too-large", status=413):
    """A request body is larger than the server accepts."""


class TooSlow(NTError, code="too-slow", status=408):
    """A request body did not arrive in the time the server allows."""


class Pending(NTError, code="pending", status=503):
    """The data exists but is held at a site that cannot be reached now.

    The request is queued; retry after :attr:`retry_after` seconds.
    """

    def __init__(self, message: str, held_at: str = "", retry_after: int = 30) -> None:
        super().__init__(message)
        self.held_at = held_at
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "held_at": self.held_at, "retry_after": self.retry_after}


class Unreachable(NTError, code="unreachable", status=502):
    """A site server cannot be reached."""


class StoreFull(NTError, code="store-full", status=507):
    """The disk or the cache cap leaves no room for more data."""


class MissingExtra(NTError, ImportError, code="missing-extra", status=501):
    """A part of the package needs libraries of an extra that is not installed."""


def from_json(body: dict[str, Any]) -> NTError:
    """Rebuild the error a server sent as JSON."""
    cls = BY_CODE.get(str(body.get("error")), NTError)
    message = str(body.get("message", "unknown error"))
    if cls is Pending:
        return Pending(message, str(body.get("held_at", "")), int(body.get("retry_after", 30)))
    return cls(message)
