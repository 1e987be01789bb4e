"""FEISHU__MODE=long_connection: receive events over lark-oapi's WebSocket client (no public URL).

lark_oapi.ws.client captures an asyncio loop at import and its Client.start() blocks forever
on it, so the SDK runs in its own thread with its own loop (we point the module's `loop` at
it). A supervisor thread watches it: when the client dies, or stays disconnected longer than
`stale_after_s` (silent disconnects are the classic failure of chat long connections), it is
stopped and restarted with exponential backoff and jitter. Events are handed to the app's
loop with call_soon_threadsafe; status() feeds /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from avatarbot.config import FeishuSettings

logger = logging.getLogger(__name__)

INTAKE_TIMEOUT_S = 10.0

EventSink = Callable[[dict[str, Any]], Any]
ClientFactory = Callable[[FeishuSettings, EventSink], Any]


def sdk_client(settings: FeishuSettings, on_event: EventSink) -> Any:
    """The real lark-oapi WebSocket client, delivering im.message.receive_v1 as plain dicts."""
    import lark_oapi as lark

    def _on_message(data: Any) -> None:
        on_event(json.loads(lark.JSON.marshal(data)))

    # Events on the long connection arrive neither encrypted nor signed (the socket itself
    # is authenticated with the app secret), so the dispatcher needs no keys.
    def _on_card_action(data: Any) -> Any:
        from lark_oapi.event.callback.model.p2_card_action_trigger import (
            P2CardActionTriggerResponse,
        )

        from avatarbot.integrations.feishu.card_callback import answer

        body = json.loads(lark.JSON.marshal(data))
        on_event(body)  # the work goes to the app's loop; the toast goes back in the ack
        return P2CardActionTriggerResponse(answer(body))

    handler = (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_im_message_receive_v1(_on_message)
        .register_p2_card_action_trigger(_on_card_action)
        .build()
    )
    return lark.ws.Client(
        settings.app_id,
        settings.app_secret.get_secret_value(),
        event_handler=handler,
        domain=settings.base_url.rstrip("/"),
        log_level=lark.LogLevel.WARNING,
    )


class LongConnection:
    def __init__(
        self,
        settings: FeishuSettings,
        on_event: EventSink | None = None,
        *,
        client_factory: ClientFactory = sdk_client,
        stale_after_s: float = 300.0,
        check_every_s: float = 2.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 120.0,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.client_factory = client_factory
        self.stale_after_s = stale_after_s
        self.check_every_s = check_every_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.state = "stopped"  # stopped | starting | connected | disconnected | backoff
        self.restarts = 0
        self.last_error = ""
        self.last_event_at: float | None = None
        self._state_since = time.monotonic()
        self._stop = threading.Event()
        self._app_loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: threading.Thread | None = None

    # --- public ----------------------------------------------------------------------

    def start(self, app_loop: asyncio.AbstractEventLoop) -> None:
        self._app_loop = app_loop
        self._stop.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, name="feishu-long-connection", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._halt_client()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        self._set_state("stopped")

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "state": self.state,
            "for_s": round(time.monotonic() - self._state_since, 1),
            "restarts": self.restarts,
        }
        if self.last_event_at is not None:
            info["last_event_age_s"] = round(time.time() - self.last_event_at, 1)
        if self.last_error:
            info["last_error"] = self.last_error
        return info

    # --- supervisor thread -----------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._state_since = time.monotonic()

    def _deliver(self, body: dict[str, Any]) -> None:
        self.last_event_at = time.time()
        loop, sink = self._app_loop, self.on_event
        if loop is None or sink is None or loop.is_closed():
            return
        if not inspect.iscoroutinefunction(sink):
            loop.call_soon_threadsafe(sink, body)
            return
        # Durable intake: the SDK sends the ack frame when this returns, so wait until the
        # app's loop has stored the event. A failure raises here: no ack, Feishu redelivers.
        asyncio.run_coroutine_threadsafe(sink(body), loop).result(timeout=INTAKE_TIMEOUT_S)

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._set_state("starting")
            worker = threading.Thread(target=self._run_client, name="feishu-ws", daemon=True)
            started = time.monotonic()
            worker.start()
            while worker.is_alive() and not self._stop.is_set():
                worker.join(self.check_every_s)
                self._watch()
            if self._stop.is_set():
                break
            self._halt_client()
            worker.join(5.0)
            # A session that stayed up a while resets the backoff; quick deaths grow it.
            failures = 0 if time.monotonic() - started > 5 * self.backoff_max_s else failures + 1
            delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, failures - 1))
            delay *= 0.5 + random.random()
            self.restarts += 1
            self._set_state("backoff")
            logger.warning(
                "Feishu long connection ended (%s); reconnecting in %.1fs",
                self.last_error or "no error",
                delay,
            )
            self._stop.wait(delay)

    def _watch(self) -> None:
        client = self._client
        if client is None:
            return
        # The SDK keeps the socket in `_conn` (None while disconnected); it has no public flag.
        connected = getattr(client, "_conn", None) is not None
        self._set_state("connected" if connected else "disconnected")
        if not connected and time.monotonic() - self._state_since > self.stale_after_s:
            self.last_error = f"disconnected for more than {self.stale_after_s:.0f}s"
            logger.warning("Feishu long connection stale: restarting it")
            self._halt_client()

    def _run_client(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._client_loop = loop
        try:
            if self.client_factory is sdk_client:
                import lark_oapi.ws.client as ws_client

                ws_client.loop = loop  # the SDK's module-level loop: make it this thread's
            self._client = self.client_factory(self.settings, self._deliver)
            self._client.start()
        except BaseException as exc:  # the SDK raises on stop and on fatal errors alike
            if not self._stop.is_set():
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning("Feishu long connection client stopped: %s", self.last_error)
        finally:
            self._shutdown_loop(loop, self._client)
            self._client = None
            self._client_loop = None

    @staticmethod
    def _shutdown_loop(loop: asyncio.AbstractEventLoop, client: Any) -> None:
        """Close the socket and cancel the SDK's tasks so nothing dangles on a dead loop."""
        with contextlib.suppress(Exception):
            disconnect = getattr(client, "_disconnect", None)
            if disconnect is not None:
                loop.run_until_complete(asyncio.wait_for(disconnect(), 3))
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        with contextlib.suppress(RuntimeError):
            loop.close()

    def _halt_client(self) -> None:
        loop = self._client_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
