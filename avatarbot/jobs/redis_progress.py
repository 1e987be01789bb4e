"""RedisProgressBus: progress events across processes through Redis pub/sub.

Workers (Celery processes) publish; every API process listens and fans the events out to
its local subscribers (WebSockets, chat progress). Each event gets a per-task sequence
number from a Redis counter, so the order holds across processes and retries; a listener
drops an event older than one it already delivered for that task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections import OrderedDict
from typing import Any

from avatarbot.jobs.progress import EventFilter, LocalProgressBus, ProgressEvent

logger = logging.getLogger(__name__)

CHANNEL = "avatarbot:progress"
SEQ_KEY = "avatarbot:progress:seq:{task_id}"
SEQ_TTL_S = 7 * 24 * 3600
_STOP = object()


class RedisProgressBus:
    def __init__(self, redis_url: str, *, listen: bool = True, channel: str = CHANNEL) -> None:
        import redis  # lazy: only with AVATARBOT_REDIS_URL

        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._channel = channel
        self._listen = listen
        self._local = LocalProgressBus()
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._publisher: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._last_seq: OrderedDict[str, int] = OrderedDict()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        import asyncio

        await self._local.start()
        self.start_publisher()
        if self._listen and self._listener is None:
            self._stopping.clear()
            self._listener = threading.Thread(
                target=self._listen_loop, name="avatarbot-progress-listener", daemon=True
            )
            self._listener.start()
            # Wait until Redis confirmed the subscription so no early event is missed.
            await asyncio.to_thread(self._subscribed.wait, 5)

    def start_publisher(self) -> None:
        """Start only the sending side (Celery workers have no local subscribers)."""
        if self._publisher is None:
            self._publisher = threading.Thread(
                target=self._publish_loop, name="avatarbot-progress-publisher", daemon=True
            )
            self._publisher.start()

    async def stop(self) -> None:
        import asyncio

        await asyncio.to_thread(self.flush)
        self._stopping.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
            self._listener = None
        await self._local.stop()
        self._client.close()

    def flush(self, timeout: float = 5.0) -> None:
        """Send everything queued so far (called before a worker process exits)."""
        if self._publisher is None:
            return
        self._outbox.put(_STOP)
        self._publisher.join(timeout)
        self._publisher = None

    # --- publishing ----------------------------------------------------------------------

    def publish(self, event: ProgressEvent) -> None:
        # Never blocks the caller (event loop or pipeline thread); one thread keeps the order.
        self._outbox.put(event)

    def _publish_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is _STOP:
                return
            try:
                self._send(item)
            except Exception as exc:  # Redis down: progress is best effort, the DB row is truth
                logger.warning("progress publish failed: %s", type(exc).__name__)

    def _send(self, event: ProgressEvent) -> None:
        key = SEQ_KEY.format(task_id=event.task_id)
        pipe = self._client.pipeline()
        pipe.incr(key)
        pipe.expire(key, SEQ_TTL_S)
        event.seq = int(pipe.execute()[0])
        self._client.publish(self._channel, json.dumps(event.to_dict(), ensure_ascii=False))

    # --- receiving -----------------------------------------------------------------------

    def _listen_loop(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(self._channel)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                        backoff = 0.5
                    elif message["type"] == "message":
                        self._on_message(message["data"])
            except Exception as exc:  # Redis restarted or unreachable: reconnect with backoff
                if not self._stopping.is_set():
                    logger.warning(
                        "progress listener lost Redis (%s); retrying in %.1f s",
                        type(exc).__name__,
                        backoff,
                    )
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
            finally:
                self._subscribed.set()  # never keep start() waiting
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _on_message(self, raw: str) -> None:
        try:
            event = ProgressEvent.from_dict(json.loads(raw))
        except (ValueError, TypeError):
            logger.warning("ignored a malformed progress message")
            return
        last = self._last_seq.get(event.task_id, 0)
        if event.seq <= last:
            return  # late or duplicate: the subscriber already saw a newer event
        self._last_seq[event.task_id] = event.seq
        self._last_seq.move_to_end(event.task_id)
        while len(self._last_seq) > 10000:
            self._last_seq.popitem(last=False)
        self._local.deliver(event)

    def subscribe(self, accept: EventFilter | None = None) -> Any:
        return self._local.subscribe(accept)

    @property
    def subscriber_count(self) -> int:
        return self._local.subscriber_count
