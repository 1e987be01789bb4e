"""Pure ASGI middleware: request ids and Prometheus metrics (non-http scopes pass through)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from avatarbot.logging_setup import request_id_var

logger = logging.getLogger("avatarbot.access")

REQUEST_ID_SCOPE_KEY = "avatarbot.request_id"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "avatarbot_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "avatarbot_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )


class RequestContextMiddleware:
    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or {}).get(b"x-request-id", b"").decode("latin-1")
        # Accept a caller's id only when it is short and plain, so logs cannot be forged.
        request_id = (
            incoming if incoming and len(incoming) <= 64 and incoming.isalnum() else None
        ) or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        # The 500 handler runs outside this middleware (after the reset below): it reads the id here.
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        start = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            # Label by route template, not raw path, so ids do not explode the label set.
            route_name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route_name, str(status_holder[0])).inc()
            self.metrics.latency.labels(method, route_name).observe(elapsed)
            logger.info(
                "%s %s %s %.1fms", method, scope.get("path"), status_holder[0], elapsed * 1000
            )
            request_id_var.reset(token)
