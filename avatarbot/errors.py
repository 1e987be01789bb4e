"""Typed domain errors.

api/ maps them to HTTP status codes, bot/ to a short user-facing message.
Messages must never contain secrets.
"""

from __future__ import annotations


class AvatarbotError(Exception):
    """Base of every error the product raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInput(AvatarbotError):
    """The caller sent something we cannot use (bad text, image, audio, cron...)."""

    status_code = 422
    code = "invalid_input"


class NotFound(AvatarbotError):
    status_code = 404
    code = "not_found"


class Conflict(AvatarbotError):
    status_code = 409
    code = "conflict"


class PermissionDenied(AvatarbotError):
    status_code = 403
    code = "forbidden"


class Unauthorized(AvatarbotError):
    status_code = 401
    code = "unauthorized"


class TooLarge(AvatarbotError):
    status_code = 413
    code = "too_large"


class RateLimited(AvatarbotError):
    status_code = 429
    code = "rate_limited"


class BackendUnavailable(AvatarbotError):
    """A requested backend lacks its model file or package; the message names what is missing."""

    status_code = 503
    code = "backend_unavailable"


class Cancelled(AvatarbotError):
    status_code = 409
    code = "cancelled"


class ExternalServiceError(AvatarbotError):
    """A platform API (Feishu, WeCom, LLM server) failed after retries."""

    status_code = 502
    code = "external_service_error"


class DeliveryRefused(AvatarbotError):
    """The platform answered and refused this message for good: retrying cannot help
    (e.g. a WeCom AI-bot push to a conversation whose user never wrote to the bot)."""

    status_code = 502
    code = "delivery_refused"
