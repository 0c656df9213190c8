"""convstore's own errors. Every failure of the library API is one of these.

``NotFound`` is also what a row of another user gives: callers cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rejected input field: ``field`` is a dotted path such as ``tool_calls.0.name``."""

    field: str
    message: str
    type: str = "invalid"


class ConvstoreError(Exception):
    """Base of every convstore error; ``status_code`` is the HTTP status it maps to."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ConvstoreError):
    """The object does not exist, is deleted, or belongs to someone else."""

    status_code = 404
    code = "not_found"


class Conflict(ConvstoreError):
    """The write collides with existing state (a taken email, a duplicate key)."""

    status_code = 409
    code = "conflict"


class InProgress(Conflict):
    """The same request (by its ``Idempotency-Key``) is still running: retrying soon is safe."""

    code = "in_progress"
    retry_after = 1


class InvalidInput(ConvstoreError):
    """The input was rejected before anything was written; ``errors`` names each field."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, errors: Iterable[FieldError] | str, *, field: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [FieldError(field or "body", errors)]
        self.errors: tuple[FieldError, ...] = tuple(errors)
        detail = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(detail or "invalid input")

    @property
    def fields(self) -> list[str]:
        """The names of the rejected fields, in order."""
        return [e.field for e in self.errors]


class InvalidCredentials(ConvstoreError):
    """Authentication failed (wrong password, bad or expired token)."""

    status_code = 401
    code = "invalid_credentials"


class PermissionDenied(ConvstoreError):
    """The caller is known but may not perform the action (used for function-level checks)."""

    status_code = 403
    code = "permission_denied"


class DatabaseUnavailable(ConvstoreError):
    """The database could not be reached or timed out; the operation may be retried."""

    status_code = 503
    code = "database_unavailable"


class DatabaseTimeout(DatabaseUnavailable):
    """The database cut a statement short (``statement_timeout``, ``lock_timeout``); nothing
    of the operation was committed and it may be retried."""

    code = "database_timeout"
