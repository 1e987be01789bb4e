"""WS /api/v1/ws/progress: task progress events, in order, for the tasks a user may see.

Protocol (JSON text frames):
  auth       `?token=<access token>` on the URL, or a first message {"type":"auth","token":…};
             missing/invalid -> close code 1008.
  client ->  {"type":"subscribe","task_ids":[…]} | {"type":"subscribe","all":true}
             {"type":"unsubscribe","task_ids":[…]} | {"type":"unsubscribe","all":true}
             {"type":"ping"}
  server ->  {"type":"authenticated","user_id"} · {"type":"subscribed","task_ids","all"}
             {"type":"snapshot", task fields} (current state of each newly subscribed task)
             {"type":"progress", ProgressEvent fields} · {"type":"pong"} · {"type":"error","detail"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from avatarbot.api.websocket import (
    FrameTooLarge,
    authenticate,
    connection_registry,
    receive_frame,
)
from avatarbot.auth.access import Caller, may_read_task
from avatarbot.jobs import service as task_service
from avatarbot.jobs.progress import ProgressEvent
from avatarbot.services import Services
from avatarbot.storage.models import User

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/ws", tags=["websocket"])

MAX_TASK_IDS = 500


class _Subscription:
    """What one connection wants to see; read by the bus filter on the event loop."""

    def __init__(self, user: User) -> None:
        self.user_id = user.id
        self.superuser = user.is_superuser
        self.all = False
        self.task_ids: set[str] = set()

    def accept(self, event: ProgressEvent) -> bool:
        if event.task_id in self.task_ids:
            return True
        return self.all and (self.superuser or event.user_id == self.user_id)


@router.websocket("/progress")
async def progress_socket(websocket: WebSocket) -> None:
    user = await authenticate(websocket)  # accepts; closes with 1008 when unauthenticated
    if user is None:
        return
    services: Services = websocket.app.state.services
    registry = connection_registry(services)
    conn = registry.add(websocket, kind="progress", user_id=user.id, username=user.email)
    wanted = _Subscription(user)
    try:
        await websocket.send_json({"type": "authenticated", "user_id": user.id})
        async with services.bus.subscribe(wanted.accept) as queue:
            writer = asyncio.create_task(_write_loop(websocket, queue))
            try:
                await _read_loop(websocket, services, wanted)
            except WebSocketDisconnect:
                pass
            finally:
                writer.cancel()
                await asyncio.wait({writer})  # never raises; the writer's end is not an error
    finally:
        registry.remove(conn)
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


async def _write_loop(websocket: WebSocket, queue: asyncio.Queue[ProgressEvent]) -> None:
    while True:
        event = await queue.get()
        try:
            await websocket.send_json(event.to_dict())
        except (WebSocketDisconnect, RuntimeError):  # closed under us; the reader ends too
            return


async def _read_loop(websocket: WebSocket, services: Services, wanted: _Subscription) -> None:
    while True:
        try:
            message = await receive_frame(websocket)
        except FrameTooLarge as exc:
            await websocket.send_json({"type": "error", "detail": str(exc)})
            continue
        except ValueError:
            await websocket.send_json({"type": "error", "detail": "frames must be JSON objects"})
            continue
        kind = message.get("type")
        if kind == "ping":
            await websocket.send_json({"type": "pong"})
        elif kind == "subscribe":
            await _subscribe(websocket, services, wanted, message)
        elif kind == "unsubscribe":
            if message.get("all"):
                wanted.all = False
            for task_id in message.get("task_ids") or []:
                wanted.task_ids.discard(str(task_id))
            await _confirm(websocket, wanted)
        else:
            await websocket.send_json(
                {
                    "type": "error",
                    "detail": "unknown message type; use subscribe, unsubscribe or ping",
                }
            )


async def _subscribe(
    websocket: WebSocket, services: Services, wanted: _Subscription, message: dict[str, Any]
) -> None:
    if message.get("all"):
        wanted.all = True
    task_ids = message.get("task_ids") or []
    if not isinstance(task_ids, list) or len(task_ids) > MAX_TASK_IDS:
        await websocket.send_json(
            {"type": "error", "detail": f"task_ids must be a list of at most {MAX_TASK_IDS} ids"}
        )
        return
    snapshots: list[dict[str, Any]] = []
    async with services.db.session() as session:
        for raw_id in task_ids:
            task_id = str(raw_id)
            task = await task_service.get(session=session, task_id=task_id)
            visible = task is not None and may_read_task(
                task, Caller(user_id=wanted.user_id, is_superuser=wanted.superuser)
            )
            if not visible:
                await websocket.send_json({"type": "error", "detail": f"task {task_id} not found"})
                continue
            assert task is not None
            wanted.task_ids.add(task_id)
            snapshots.append(
                {
                    "type": "snapshot",
                    "task_id": task.id,
                    "status": task.status.value,
                    "stage": task.stage,
                    "percent": task.progress,
                    "message": task.message,
                    "error": task.error_message,
                }
            )
    await _confirm(websocket, wanted)
    for snapshot in snapshots:
        await websocket.send_json(snapshot)


async def _confirm(websocket: WebSocket, wanted: _Subscription) -> None:
    await websocket.send_json(
        {"type": "subscribed", "task_ids": sorted(wanted.task_ids), "all": wanted.all}
    )
