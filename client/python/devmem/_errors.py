"""devmem.Error and its subclasses: the daemon's absl/gRPC status as an
exception. The compiled module raises them through from_status(), the one
place a Status becomes a Python exception."""

from __future__ import annotations

# absl::StatusCode values (identical to gRPC's codes).
_CODE_NAMES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
    11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}


class Error(Exception):
    """A devmem-broker call failed.

    Attributes:
      code: the status code's name ("NOT_FOUND", ...), as in docs/API.md.
      code_value: its number (absl::StatusCode / grpc.StatusCode value).
      message: the daemon's (or the client library's) message.
    """

    def __init__(self, code: str, message: str, code_value: int = 2):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.code_value = code_value
        self.message = message


class InvalidArgument(Error):
    """INVALID_ARGUMENT: a bad request (unknown queue, bad spec)."""


class NotFound(Error):
    """NOT_FOUND: no such device, ticket or binding (or it is already
    released)."""


class AlreadyExists(Error):
    """ALREADY_EXISTS: a requested queue is bound already."""


class PermissionDenied(Error):
    """PERMISSION_DENIED: the daemon refused this uid or session."""


class ResourceExhausted(Error):
    """RESOURCE_EXHAUSTED: quota reached or not enough free queues."""


class FailedPrecondition(Error):
    """FAILED_PRECONDITION: the state does not allow it (device cannot do
    devmem, /dev/udmabuf missing, binding not active, client closed)."""


class Unavailable(Error):
    """UNAVAILABLE: no daemon answers, or the session/binding closed."""


class DeadlineExceeded(Error):
    """DEADLINE_EXCEEDED: a wait (completions, RPC deadline) timed out."""


_CLASSES = {
    3: InvalidArgument, 4: DeadlineExceeded, 5: NotFound, 6: AlreadyExists,
    7: PermissionDenied, 8: ResourceExhausted, 9: FailedPrecondition,
    14: Unavailable,
}


def from_status(code_value: int, message: str) -> Error:
    """The exception for an absl::Status of code `code_value`."""
    cls = _CLASSES.get(code_value, Error)
    return cls(_CODE_NAMES.get(code_value, str(code_value)), message,
               code_value)
