"""Logging: plain text or JSON lines, with the current request id on every record."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# Query parameters and headers that carry credentials: WebSocket clients send the access token
# as ?token=, and uvicorn logs the path with its query string ('"WebSocket /ws?token=…"').
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:token|access_token|refresh_token|key|secret|signature|sig|password|code)=)"
    r"[^&;\s\"']+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")


def redact_secrets(text: str) -> str:
    """The text with credential query values and bearer tokens replaced by ***."""
    return _BEARER.sub(r"\1***", _SECRET_QUERY.sub(r"\1***", text))


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record whose message carries a token so that no handler ever sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Arguments are redacted one by one first: uvicorn's access formatter unpacks them.
        if isinstance(record.args, tuple):
            record.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in record.args)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's problem, not ours
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = RedactSecretsFilter()
# uvicorn's own loggers: with its default log config they do not propagate to our handler.
_UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = _StderrHandler()
    handler.addFilter(_REDACT)
    handler.addFilter(_RequestIdFilter())
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        if _REDACT not in uvicorn_logger.filters:
            uvicorn_logger.addFilter(_REDACT)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_avatarbot", False):
            root.removeHandler(existing)
    handler._avatarbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO, which can include webhook keys; keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs every run of our 30 s schedule sync at INFO: noise, not news.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
