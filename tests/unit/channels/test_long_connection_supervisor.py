"""The long-connection supervisor: restarts a dying client with backoff, restarts a silent one."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from avatarbot.config import FeishuSettings
from avatarbot.integrations.feishu.long_connection import LongConnection


class ScriptedClient:
    """Dies on its first `failures` starts, then connects and delivers one event."""

    counter = itertools.count()

    def __init__(self, on_event: Any, failures: int, stay_disconnected: bool = False) -> None:
        self.on_event = on_event
        self.failures = failures
        self.stay_disconnected = stay_disconnected
        self._conn: object | None = None

    def start(self) -> None:
        attempt = next(self.counter)
        if attempt < self.failures:
            raise ConnectionError(f"refused #{attempt}")
        if not self.stay_disconnected:
            self._conn = object()
            self.on_event({"attempt": attempt})
        asyncio.get_event_loop().run_forever()  # like the SDK: block until stopped


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - a thread updates these plain attributes
            await asyncio.sleep(0.02)


async def test_dying_client_is_restarted_with_backoff_and_delivers_on_the_app_loop() -> None:
    ScriptedClient.counter = itertools.count()
    events: list[tuple[dict[str, Any], bool]] = []
    app_loop = asyncio.get_running_loop()

    def sink(body: dict[str, Any]) -> None:
        events.append((body, asyncio.get_running_loop() is app_loop))

    connection = LongConnection(
        FeishuSettings(app_id="a"),
        sink,
        client_factory=lambda settings, on_event: ScriptedClient(on_event, failures=2),
        check_every_s=0.02,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )
    connection.start(app_loop)
    try:
        await _until(lambda: connection.state == "connected" and events)
        assert connection.restarts == 2 and "refused #1" in connection.last_error
        assert events == [({"attempt": 2}, True)]  # delivered on the app's loop, not the SDK's
        assert connection.status()["state"] == "connected"
    finally:
        await asyncio.to_thread(connection.stop)
    assert connection.state == "stopped"


async def test_silent_disconnect_is_restarted_by_the_watchdog() -> None:
    ScriptedClient.counter = itertools.count()
    connection = LongConnection(
        FeishuSettings(app_id="a"),
        lambda body: None,
        client_factory=lambda settings, on_event: ScriptedClient(
            on_event, failures=0, stay_disconnected=True
        ),
        stale_after_s=0.1,
        check_every_s=0.02,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
    )
    connection.start(asyncio.get_running_loop())
    try:
        await _until(lambda: connection.restarts >= 2)
        assert "disconnected for more than" in connection.last_error
        assert connection.status()["state"] in ("starting", "disconnected", "backoff")
    finally:
        await asyncio.to_thread(connection.stop)


def test_socket_events_are_stored_before_the_ack() -> None:
    """The SDK acks when the callback returns: that must be after the app stored the event."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stored: list[dict[str, int]] = []

    async def store(body: dict[str, int]) -> None:
        await asyncio.sleep(0.05)  # a database write on the app's loop
        stored.append(body)

    async def database_down(body: dict[str, int]) -> None:
        raise RuntimeError("database is down")

    try:
        connection = LongConnection(FeishuSettings(app_id="cli_x", app_secret="s"), store)
        connection._app_loop = loop
        connection._deliver({"n": 1})
        assert stored == [{"n": 1}]  # returned (= acked) only once stored
        connection.on_event = database_down
        with pytest.raises(RuntimeError):  # no ack: Feishu delivers the event again
            connection._deliver({"n": 2})
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
