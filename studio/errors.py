"""Operation outcomes that are the caller's to fix; each maps to one HTTP status."""

from __future__ import annotations


class OperationError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(OperationError):
    status = 400


class UnauthorizedError(OperationError):
    status = 401


class ForbiddenError(OperationError):
    status = 403


class NotFoundError(OperationError):
    status = 404


class ConflictError(OperationError):
    status = 409


class TooLargeError(OperationError):
    status = 413


class InvalidError(OperationError):
    status = 422


class NotAvailableError(OperationError):
    """A feature that is not built yet; said plainly, never faked."""

    status = 501


class UpstreamError(OperationError):
    """A platform refused what was asked of it (the message says why)."""

    status = 502
