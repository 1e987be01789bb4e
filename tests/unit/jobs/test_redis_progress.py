"""RedisProgressBus: events from another process's bus reach local subscribers, in order."""

from __future__ import annotations

import asyncio
import json

from avatarbot.jobs.progress import ProgressEvent
from avatarbot.jobs.redis_progress import RedisProgressBus


async def test_events_cross_buses_in_order_with_per_task_seq(redis_url: str) -> None:
    listener = RedisProgressBus(redis_url, channel="test:progress:order")
    worker = RedisProgressBus(redis_url, listen=False, channel="test:progress:order")
    await listener.start()
    worker.start_publisher()
    try:
        async with listener.subscribe(lambda e: e.task_id == "t1") as queue:
            for i in range(50):
                worker.publish(ProgressEvent(task_id="t1", status="running", percent=float(i)))
                worker.publish(ProgressEvent(task_id="t2", status="running", percent=float(i)))
            received = []
            async with asyncio.timeout(10):
                while len(received) < 50:
                    received.append(await queue.get())
        assert [e.percent for e in received] == [float(i) for i in range(50)]
        seqs = [e.seq for e in received]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        assert queue.empty()  # t2 events were filtered out
    finally:
        worker.flush()
        await listener.stop()


async def test_a_stale_event_is_dropped(redis_url: str) -> None:
    bus = RedisProgressBus(redis_url, channel="test:progress:stale")
    await bus.start()
    try:
        async with bus.subscribe() as queue:
            newer = ProgressEvent(task_id="t9", status="completed", seq=5)
            older = ProgressEvent(task_id="t9", status="running", seq=3)
            bus._on_message(json.dumps(newer.to_dict()))
            bus._on_message(json.dumps(older.to_dict()))
            async with asyncio.timeout(5):
                first = await queue.get()
            await asyncio.sleep(0)
            assert first.status == "completed" and queue.empty()
    finally:
        await bus.stop()


async def test_listener_reconnects_after_losing_its_connection(redis_url: str) -> None:
    import redis

    listener = RedisProgressBus(redis_url, channel="test:progress:reconnect")
    worker = RedisProgressBus(redis_url, listen=False, channel="test:progress:reconnect")
    await listener.start()
    worker.start_publisher()
    admin = redis.Redis.from_url(redis_url)
    try:
        async with listener.subscribe() as queue:
            killed = admin.client_kill_filter(_type="pubsub")
            assert killed >= 1
            # Publish until the re-subscribed listener delivers (it backs off from 0.5 s).
            async with asyncio.timeout(10):
                while queue.empty():
                    worker.publish(ProgressEvent(task_id="t-re", status="running"))
                    await asyncio.sleep(0.2)
            assert (await queue.get()).task_id == "t-re"
    finally:
        admin.close()
        worker.flush()
        await listener.stop()
