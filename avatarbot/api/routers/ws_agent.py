"""WS /api/v1/ws/agent: chat with an agent, streamed; GET /api/v1/ws/connections (superuser).

Client frames: {"type": "message", "text", "agent"?, "digital_human_id"?}, {"type": "reset"},
{"type": "ping"}.
Server frames, in order for one message: {"type": "token", "text"}*, {"type": "tool_call"},
{"type": "tool_result"}, {"type": "task"}, then {"type": "answer", "text", "media": [...]};
{"type": "progress", ...} frames follow for the tasks the agent started, until they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from avatarbot.api.deps import ServicesDep, SuperUser
from avatarbot.api.websocket import (
    MAX_MESSAGE_BYTES,
    FrameTooLarge,
    authenticate,
    connection_registry,
    receive_frame,
)
from avatarbot.auth.access import Caller, usable_digital_human
from avatarbot.auth.shared_limits import Limiter, make_limiter
from avatarbot.bot.types import Channel, IncomingMessage, Reply, ReplyKind
from avatarbot.errors import AvatarbotError, NotFound
from avatarbot.jobs import service as task_service
from avatarbot.jobs.progress import ProgressEvent
from avatarbot.services import Services
from avatarbot.storage.models import User

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ws", tags=["websocket"])


@router.get("/connections")
async def list_connections(_user: SuperUser, services: ServicesDep) -> dict[str, Any]:
    """Live WebSocket connections of this server (agent chats and progress streams)."""
    return connection_registry(services).stats()


@router.websocket("/agent")
async def agent_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    user = await authenticate(websocket)
    if user is None:
        return
    await AgentSocket(websocket, services, user).run()


class AgentSocket:
    def __init__(self, websocket: WebSocket, services: Services, user: User) -> None:
        self.websocket = websocket
        self.services = services
        self.user = user
        params = websocket.query_params
        self.agent_name: str | None = params.get("agent") or None
        self.chat_id = (params.get("conversation") or "console")[:100]
        self.registry = connection_registry(services)
        self.conn = self.registry.add(
            websocket,
            kind="agent",
            user_id=user.id,
            username=user.username or user.email,
            agent=self.agent_name or "",
        )
        self._send_lock = asyncio.Lock()
        self._task_ids: set[str] = set()
        self._finished: set[str] = set()
        self._closed = False
        # Progress frames wait here while a message is being answered, so that a client
        # always sees a task's "answer" before its progress (a fast task can finish first).
        self._held: list[dict[str, Any]] | None = None

    async def run(self) -> None:
        # Subscribed for the whole connection, so no event of a just-started task is missed.
        bus_filter = lambda event: event.task_id in self._task_ids  # noqa: E731
        try:
            async with self.services.bus.subscribe(bus_filter) as queue:
                forwarder = asyncio.create_task(self._forward_progress(queue))
                try:
                    await self.send(
                        {"type": "ready", "connection_id": self.conn.id, "agent": self.agent_name}
                    )
                    await self._receive_loop()
                finally:
                    forwarder.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await forwarder
        except WebSocketDisconnect:
            pass
        finally:
            self._closed = True
            self.registry.remove(self.conn)

    async def send(self, frame: dict[str, Any]) -> None:
        if self._closed:
            return
        async with self._send_lock:
            try:
                await self.websocket.send_json(frame)
                self.conn.messages_out += 1
            except (WebSocketDisconnect, RuntimeError):
                self._closed = True  # the client went away; the agent's work carries on

    async def _receive_loop(self) -> None:
        while True:
            try:
                frame = await receive_frame(self.websocket)
            except FrameTooLarge as exc:
                # Rejected, not fatal: the client learns why and may send a shorter message.
                await self.send(
                    {
                        "type": "error",
                        "code": "too_large",
                        "detail": f"message too large ({exc.size} bytes; limit "
                        f"{MAX_MESSAGE_BYTES} bytes)",
                    }
                )
                continue
            except ValueError:
                await self.send(
                    {"type": "error", "code": "invalid_json", "detail": "send JSON object frames"}
                )
                continue
            self.conn.messages_in += 1
            kind = frame.get("type")
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "auth":
                await self.send({"type": "ready", "connection_id": self.conn.id})
            elif kind == "reset":
                await self._reset(frame)
            elif kind == "message":
                await self._message(frame)
            else:
                await self.send(
                    {"type": "error", "code": "unknown_type", "detail": f"unknown frame {kind!r}"}
                )

    def _incoming(self, text: str, digital_human_id: Any = None) -> IncomingMessage:
        raw = {"digital_human_id": digital_human_id} if isinstance(digital_human_id, str) else {}
        return IncomingMessage(
            channel=Channel.WEB,
            chat_id=self.chat_id,
            user_id=str(self.user.id),
            text=text,
            user_name=self.user.username or self.user.email,
            owner_id=self.user.id,
            raw=raw,
        )

    async def _reset(self, frame: dict[str, Any]) -> None:
        agent = frame.get("agent") or self.agent_name
        try:
            removed = await self.services.agents.reset(agent, self._incoming("").conversation)
        except AvatarbotError as exc:
            await self.send({"type": "error", "code": exc.code, "detail": exc.message})
            return
        await self.send({"type": "reset", "removed": removed})

    async def _message(self, frame: dict[str, Any]) -> None:
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            await self.send({"type": "error", "code": "invalid_input", "detail": "text is empty"})
            return
        limiter = _limiter(self.websocket, self.services)
        key = f"ws-agent:user:{self.user.id}"
        if not limiter.hit(key):
            await self.send(
                {
                    "type": "error",
                    "code": "rate_limited",
                    "detail": f"too many messages; try again in {limiter.retry_after(key)} s",
                }
            )
            return
        agent = frame.get("agent") or self.agent_name
        human_id = frame.get("digital_human_id")
        if human_id is not None and not await self._may_use_human(human_id):
            await self.send(
                {"type": "error", "code": "not_found", "detail": "digital human not found"}
            )
            return
        self._held = []
        try:
            replies = await self.services.agents.handle(
                self._incoming(text, frame.get("digital_human_id")),
                agent_name=agent,
                on_event=self._on_event,
            )
        except AvatarbotError as exc:
            await self.send({"type": "error", "code": exc.code, "detail": exc.message})
        except Exception:
            logger.exception("agent socket: handling a message failed")
            await self.send({"type": "error", "code": "internal_error", "detail": "internal error"})
        else:
            await self.send(answer_frame(replies, agent))
        finally:
            await self._release_held()

    async def _may_use_human(self, human_id: Any) -> bool:
        """The frame's digital human exists and is shared or this user's (or a superuser asks)."""
        if not isinstance(human_id, str) or not human_id or len(human_id) > 64:
            return False
        async with self.services.db.session() as session:
            try:
                await usable_digital_human(session, human_id, Caller.of(self.user))
            except NotFound:
                return False
        return True

    async def _release_held(self) -> None:
        while self._held:
            await self.send(self._held.pop(0))
        self._held = None  # no await since the last check: nothing can slip in between

    async def _send_progress(self, frame: dict[str, Any]) -> None:
        if self._held is not None:
            self._held.append(frame)
        else:
            await self.send(frame)

    async def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "task" and event.get("task_id"):
            task_id = str(event["task_id"])
            self._task_ids.add(task_id)
            await self.send(event)
            await self._send_if_already_finished(task_id)
            return
        await self.send(event)

    async def _send_if_already_finished(self, task_id: str) -> None:
        # A very fast task may finish before its events could reach us: report it from the row.
        async with self.services.db.session() as session:
            task = await task_service.get(session=session, task_id=task_id)
        if task is None or not task.status.finished or task_id in self._finished:
            return
        self._finished.add(task_id)
        self._task_ids.discard(task_id)
        result = dict(task.result or {})
        result.pop("path", None)
        if task.result_path:
            result["url"] = f"/api/v1/tasks/{task_id}/result"
        event = ProgressEvent(
            task_id=task_id,
            status=task.status.value,
            stage=task.stage,
            percent=task.progress,
            message=task.message,
            result=result or None,
            error=task.error_message,
        )
        await self._send_progress(event.to_dict())

    async def _forward_progress(self, queue: asyncio.Queue[ProgressEvent]) -> None:
        while True:
            event = await queue.get()
            if event.task_id in self._finished:
                continue
            if event.status in ("completed", "failed", "cancelled"):
                self._finished.add(event.task_id)
                self._task_ids.discard(event.task_id)
            await self._send_progress(event.to_dict())


def _limiter(websocket: WebSocket, services: Services) -> Limiter:
    """One per app, shared by all of a user's agent sockets (same budget as chat users)."""
    state = websocket.app.state
    limiter = getattr(state, "agent_ws_limiter", None)
    if limiter is None:
        settings = services.settings
        limiter = make_limiter(
            settings.redis_url, "ws-agent", settings.bot.user_messages_per_minute, 60.0
        )
        state.agent_ws_limiter = limiter
    return limiter


def answer_frame(replies: list[Reply], agent: str | None) -> dict[str, Any]:
    texts = [r.text for r in replies if r.kind in (ReplyKind.TEXT, ReplyKind.MARKDOWN) and r.text]
    media = [
        {
            "kind": r.kind.value,
            "task_id": r.task_id,
            "url": f"/api/v1/tasks/{r.task_id}/result" if r.task_id else None,
            "name": r.path.name if r.path else None,
        }
        for r in replies
        if r.kind not in (ReplyKind.TEXT, ReplyKind.MARKDOWN)
    ]
    resolved = next((r.meta["agent"] for r in replies if r.meta.get("agent")), agent)
    return {"type": "answer", "agent": resolved, "text": "\n\n".join(texts), "media": media}
