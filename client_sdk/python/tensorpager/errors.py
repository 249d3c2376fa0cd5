"""Exceptions of the tensorpager package, one class per gRPC status code.

Every exception is a :class:`tensorpager.Error` with ``code`` (a
:class:`StatusCode`) and ``message`` (the server's or the SDK's words,
unchanged). Single-block calls raise them; batch calls put one in each
failed item's ``error``.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Tuple, Type


class StatusCode(enum.IntEnum):
    """gRPC status codes (google.rpc.Code)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Error(Exception):
    """A failed tensorpager call: ``code`` and ``message`` as the server
    (or the SDK, for what it checks before sending) gave them."""

    code: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str, code: "StatusCode | int | None" = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = StatusCode(code)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> Tuple[Any, Tuple[int, str]]:
        # Pickles (multiprocessing) as the class of its code.
        return from_status, (int(self.code), self.message)


class Cancelled(Error):
    code = StatusCode.CANCELLED


class Unknown(Error):
    code = StatusCode.UNKNOWN


class InvalidArgument(Error, ValueError):
    """A bad id, namespace, size or option; retrying will not help."""

    code = StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(Error, TimeoutError):
    code = StatusCode.DEADLINE_EXCEEDED


class NotFound(Error, LookupError):
    """No such block (or namespace) on the server."""

    code = StatusCode.NOT_FOUND


class AlreadyExists(Error):
    code = StatusCode.ALREADY_EXISTS


class PermissionDenied(Error):
    code = StatusCode.PERMISSION_DENIED


class ResourceExhausted(Error):
    """A server budget (RAM, swap space, in-flight bytes, streams) or a
    local cache budget is full."""

    code = StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """The block is not in a state for this call (e.g. a put whose size,
    dtype or shape differ from the existing block's), or the client is
    closed."""

    code = StatusCode.FAILED_PRECONDITION


class Aborted(Error):
    code = StatusCode.ABORTED


class OutOfRange(Error):
    code = StatusCode.OUT_OF_RANGE


class Unimplemented(Error):
    code = StatusCode.UNIMPLEMENTED


class Internal(Error):
    code = StatusCode.INTERNAL


class Unavailable(Error, ConnectionError):
    """The server cannot be reached (down or restarting); safe to retry."""

    code = StatusCode.UNAVAILABLE


class DataLoss(Error):
    """The block's bytes are gone: lost in a restart while only in RAM, or
    damaged on disk. Writing the block again heals it."""

    code = StatusCode.DATA_LOSS


class Unauthenticated(Error):
    code = StatusCode.UNAUTHENTICATED


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code.value: cls
    for cls in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded,
                NotFound, AlreadyExists, PermissionDenied, ResourceExhausted,
                FailedPrecondition, Aborted, OutOfRange, Unimplemented,
                Internal, Unavailable, DataLoss, Unauthenticated)
}


def from_status(code: int, message: str) -> Error:
    """The exception for a non-OK status ``code`` (a gRPC code number)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return Unknown(f"status code {code}: {message}")
    return cls(message)
