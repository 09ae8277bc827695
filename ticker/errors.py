"""The error tree and the one JSON error shape.

::

    TickerError                 400 bad_request
    ├── InvalidInput            422 invalid (with per-field messages)
    ├── NotFound                404 not_found
    ├── Conflict                409 conflict
    ├── PreconditionFailed      412 precondition_failed
    ├── Unauthorized            401 unauthorized
    ├── Forbidden               403 forbidden
    ├── PayloadTooLarge         413 too_large
    ├── UnsupportedMediaType    415 unsupported_media_type
    ├── RateLimited             429 rate_limited
    ├── Unavailable             503 unavailable (Redis down; retry later)
    └── ConfigError             a setting no process can run with (CLI: one line, exit 2)

The API turns each into ``{"error": {"code", "message", "fields"}}`` with its
status; the CLI prints the message as one line.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TickerError(Exception):
    """Root of every error the package raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.headers: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        """The body every API error answers with."""
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class InvalidInput(TickerError):
    status = 422
    code = "invalid"


class NotFound(TickerError):
    status = 404
    code = "not_found"


class Conflict(TickerError):
    status = 409
    code = "conflict"


class PreconditionFailed(TickerError):
    status = 412
    code = "precondition_failed"


class Unauthorized(TickerError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers["WWW-Authenticate"] = 'Bearer realm="ticker"'


class Forbidden(TickerError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(TickerError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(TickerError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(TickerError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(max(1, round(retry_after + 0.5)))


class Unavailable(TickerError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after)


class ConfigError(TickerError):
    code = "config"


__all__ = [
    "ConfigError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "RateLimited",
    "TickerError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]
