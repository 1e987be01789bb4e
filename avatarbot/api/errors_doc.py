"""The error answers every API operation may give, for /openapi.json.

Every error is {"detail": ...}: a message string from our typed errors, or FastAPI's list of
field errors when a request does not match its schema. Documenting them lets clients (and
schema checkers such as schemathesis) rely on the shape of a 4xx/5xx answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorAnswer(BaseModel):
    detail: str | list[dict[str, Any]]


def _answer(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _answer("Unreadable request"),
    401: _answer("Not authenticated"),
    403: _answer("Not allowed"),
    404: _answer("Not found"),
    409: _answer("Conflicts with the current state"),
    413: _answer("Too large"),
    422: _answer("Invalid input"),
    429: _answer("Too many requests"),
    502: _answer("An outside service failed"),
    503: _answer("A backend or service is unavailable"),
}

WEBHOOK_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: API_ERROR_RESPONSES[code] for code in (400, 401, 403, 404, 413)
}
