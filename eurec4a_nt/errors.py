"""Exceptions users see. Each says what went wrong and, where it can, what to do.

Every class has an HTTP status so the server and the client map errors both ways
through one table (:data:`BY_CODE`).
"""

from __future__ import annotations

from typing import Any


class NTError(Exception):
    """Base class of every error this package raises on purpose."""

    status = 500
    code = "error"

    def to_json(self) -> dict[str, Any]:
        """The JSON body the server sends for this error."""
        return {"error": self.code, "message": str(self)}


class BadInput(NTError, ValueError):
    """A name, id, argument or request body is not acceptable."""

    status = 400
    code = "bad-input"


class NotFound(NTError, KeyError):
    """A site, entry or object does not exist here."""

    status = 404
    code = "not-found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ObjectMissing(NotFound):
    """An object is not in this store."""

    code = "object-missing"


class Corrupt(NTError):
    """Bytes do not match their id, or a stored file is damaged."""

    status = 422
    code = "corrupt"


class BadCommit(NTError):
    """A commit is forged, altered, out of order or from an unknown site."""

    status = 409
    code = "bad-commit"


class Forked(BadCommit):
    """A site signed two different commits with one seq: its log forked."""

    code = "forked"


class Unauthorized(NTError):
    """A token is missing."""

    status = 401
    code = "unauthorized"


class Forbidden(NTError):
    """A token is wrong or lacks the right."""

    status = 403
    code = "forbidden"


class TooLarge(NTError):
    """A request body is larger than the server accepts."""

    status = 413
    code = "too-large"


class Pending(NTError):
    """The data exists but is held at a site that cannot be reached now.

    The request is queued; retry after :attr:`retry_after` seconds.
    """

    status = 503
    code = "pending"

    def __init__(self, message: str, held_at: str = "", retry_after: int = 30) -> None:
        super().__init__(message)
        self.held_at = held_at
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "held_at": self.held_at, "retry_after": self.retry_after}


class Unreachable(NTError):
    """A site server cannot be reached."""

    status = 502
    code = "unreachable"


class StoreFull(NTError):
    """The disk or the cache cap leaves no room for more data."""

    status = 507
    code = "store-full"


class MissingExtra(NTError, ImportError):
    """A part of the package needs libraries of an extra that is not installed."""

    status = 501
    code = "missing-extra"


BY_CODE: dict[str, type[NTError]] = {
    cls.code: cls
    for cls in (
        NTError, BadInput, NotFound, ObjectMissing, Corrupt, BadCommit, Forked, Unauthorized,
        Forbidden, TooLarge, Pending, Unreachable, StoreFull,
    )
}


def from_json(body: dict[str, Any]) -> NTError:
    """Rebuild the error a server sent as JSON."""
    cls = BY_CODE.get(str(body.get("error")), NTError)
    message = str(body.get("message", "unknown error"))
    if cls is Pending:
        return Pending(message, str(body.get("held_at", "")), int(body.get("retry_after", 30)))
    return cls(message)
