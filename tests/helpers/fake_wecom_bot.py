"""A stand-in WeCom AI-bot long-connection server (aiohttp WebSocket on 127.0.0.1).

Speaks the frames of shared/spec/PROTOCOLS-CHAT2.md §1.6 and enforces its checklist (§1.9):
subscribe first, pings answered (unless told to go silent), a second subscribe kicks the old
socket with disconnected_event, respond only on a message req_id (846605), one unacked frame
per req_id (6000), stream ≤ 20 480 bytes and frozen after finish, 846608 after the stream
window, aibot_send_msg only to chats that wrote first, the three-step media upload, and
aibot_respond_update_msg only on a template_card_event req_id within 5 s.
Runs its own event loop in a thread; the test thread reads the records.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = "aibot-test"
SECRET = "aibot-secret"


@dataclass
class Bubble:
    req_id: str
    chat: str
    content: str = ""
    finished: bool = False
    frames: int = 0
    first_at: float = field(default_factory=time.monotonic)
    history: list[tuple[float, str]] = field(default_factory=list)  # (when, content) per frame


class FakeWecomBot:
    def __init__(self, *, stream_window_s: float = 360.0, ack_delay_s: float = 0.0) -> None:
        self.stream_window_s = stream_window_s
        self.ack_delay_s = ack_delay_s
        self.answer_pings = True
        self.frames: list[dict[str, Any]] = []  # every frame the bot sent us
        self.bubbles: dict[str, Bubble] = {}
        self.messages: list[dict[str, Any]] = []  # non-stream replies and pushes
        self.media: dict[str, dict[str, Any]] = {}
        self.errors: list[tuple[str, int]] = []  # (cmd, errcode) we answered
        self.subscribes = 0
        self.connections = 0
        self.welcomes: list[dict[str, Any]] = []
        self.card_updates: list[dict[str, Any]] = []  # aibot_respond_update_msg: req_id, body
        self.sent_at: dict[str, float] = {}  # req_id -> when the callback went out
        self.req_window_s = 24 * 3600.0  # replies on a req_id after this -> 846605
        self.kill_when: Callable[[dict[str, Any]], bool] | None = None  # drop link, no ack
        # The reply window of a frame's req_id closes when this says so (846605 from then on).
        self.expire_when: Callable[[dict[str, Any]], bool] | None = None
        self.expired: set[str] = set()
        self._req: dict[str, tuple[str, str, float]] = {}  # req_id -> (kind, chat, time)
        self._inflight: set[str] = set()
        self._chats_that_wrote: set[str] = set()
        self._uploads: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Future[None]] = set()
        self._ws: web.WebSocketResponse | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle (test thread) -------------------------------------------------------

    def start(self) -> FakeWecomBot:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what users do (test thread) ----------------------------------------------------

    def user_says(
        self, user: str, content: str, *, chatid: str = "", msgtype: str = "text", **extra: Any
    ) -> str:
        """Deliver an aibot_msg_callback; returns its req_id."""
        body: dict[str, Any] = {
            "msgid": f"msg{next(self._ids)}",
            "aibotid": BOT_ID,
            "chattype": "group" if chatid else "single",
            "from": {"userid": user},
            "msgtype": msgtype,
        }
        if chatid:
            body["chatid"] = chatid
        if msgtype == "text":
            body["text"] = {"content": content}
        body.update(extra)
        return self.callback("aibot_msg_callback", body, kind="msg", chat=chatid or user)

    def event(self, user: str, eventtype: str, **event: Any) -> str:
        body = {
            "msgid": f"evt{next(self._ids)}",
            "create_time": int(time.time()),
            "aibotid": BOT_ID,
            "from": {"userid": user},
            "msgtype": "event",
            "event": {"eventtype": eventtype, **event},
        }
        return self.callback("aibot_event_callback", body, kind=eventtype, chat=user)

    def click(self, user: str, card: dict[str, Any], key: str) -> str:
        """A press on the button `key` of a template card we were sent (nested shape)."""
        assert key in [b["key"] for b in card.get("button_list") or []], "no such button"
        return self.event(
            user,
            "template_card_event",
            template_card_event={
                "card_type": card.get("card_type"),
                "event_key": key,
                "task_id": card.get("task_id"),
            },
        )

    def callback(self, cmd: str, body: dict[str, Any], *, kind: str, chat: str) -> str:
        req_id = f"req{next(self._ids)}"
        self._req[req_id] = (kind, chat, time.monotonic())
        self.sent_at[req_id] = time.monotonic()
        if kind == "msg":
            self._chats_that_wrote.add(chat)
        frame = {"cmd": cmd, "headers": {"req_id": req_id}, "body": body}
        self.send_raw(json.dumps(frame, ensure_ascii=False))
        return req_id

    def send_raw(self, text: str) -> None:
        async def _send() -> None:
            assert self._ws is not None, "no bot connected"
            await self._ws.send_str(text)

        self._call(_send())

    def kill(self) -> None:
        """Close the bot's socket from the server side."""

        async def _kill() -> None:
            if self._ws is not None:
                await self._ws.close()

        self._call(_kill())

    def sent(self, msgtype: str) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if m["body"].get("msgtype") == msgtype]

    def bubbles_for(self, req_id: str) -> list[Bubble]:
        return [b for b in list(self.bubbles.values()) if b.req_id == req_id]

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    # --- the server (its own loop) ------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=8 * 1024 * 1024)
        await ws.prepare(request)
        self.connections += 1
        subscribed = False
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            self.frames.append(frame)
            req_id = str((frame.get("headers") or {}).get("req_id") or "")
            cmd = frame.get("cmd")
            if not subscribed:
                body = frame.get("body") or {}
                ok = cmd == "aibot_subscribe" and body == {"bot_id": BOT_ID, "secret": SECRET}
                await self._ack(ws, req_id, 0 if ok else 40001, cmd)
                if not ok:
                    await ws.close()
                    break
                subscribed = True
                self.subscribes += 1
                old, self._ws = self._ws, ws
                if old is not None and not old.closed:
                    await old.send_str(json.dumps(self._disconnected()))
                    await old.close()
                continue
            if self.expire_when is not None and self.expire_when(frame):
                self.expired.add(req_id)
            if self.kill_when is not None and self.kill_when(frame):
                self.kill_when = None
                await ws.close()
                break
            task = asyncio.ensure_future(self._answer(ws, frame, req_id, cmd))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._ws is ws:
            self._ws = None
        return ws

    def _disconnected(self) -> dict[str, Any]:
        body = {"msgid": "disc", "aibotid": BOT_ID, "msgtype": "event"}
        body["event"] = {"eventtype": "disconnected_event"}
        return {"cmd": "aibot_event_callback", "headers": {"req_id": "disc"}, "body": body}

    async def _ack(
        self, ws: web.WebSocketResponse, req_id: str, errcode: int, cmd: Any, body: Any = None
    ) -> None:
        answer: dict[str, Any] = {"headers": {"req_id": req_id}, "errcode": errcode}
        answer["errmsg"] = "ok" if errcode == 0 else "error"
        if body is not None:
            answer["body"] = body
        if errcode:
            self.errors.append((str(cmd), errcode))
        if not ws.closed:
            await ws.send_str(json.dumps(answer))

    async def _answer(
        self, ws: web.WebSocketResponse, frame: dict[str, Any], req_id: str, cmd: Any
    ) -> None:
        if not req_id:
            await self._ack(ws, req_id, 40058, cmd)
            return
        if cmd == "ping":
            if self.answer_pings:
                await self._ack(ws, req_id, 0, cmd)
            return
        if req_id in self._inflight:  # a second frame before the first was acked
            await self._ack(ws, req_id, 6000, cmd)
            return
        self._inflight.add(req_id)
        try:
            if self.ack_delay_s:
                await asyncio.sleep(self.ack_delay_s)
            errcode, body = self._apply(frame, req_id, str(cmd))
        finally:
            self._inflight.discard(req_id)
        await self._ack(ws, req_id, errcode, cmd, body)

    def _apply(self, frame: dict[str, Any], req_id: str, cmd: str) -> tuple[int, Any]:
        body = frame.get("body") or {}
        if cmd == "aibot_respond_msg":
            return self._respond(req_id, body), None
        if cmd == "aibot_respond_welcome_msg":
            kind, _, at = self._req.get(req_id, ("", "", 0.0))
            if kind != "enter_chat" or time.monotonic() - at > 5:
                return 846605, None
            self.welcomes.append(body)
            return 0, None
        if cmd == "aibot_respond_update_msg":
            kind, _, at = self._req.get(req_id, ("", "", 0.0))
            card = body.get("template_card") or {}
            if kind != "template_card_event" or time.monotonic() - at > 5:
                return 846605, None
            if body.get("response_type") != "update_template_card" or not card.get("card_type"):
                return 40009, None
            self.card_updates.append(
                {"req_id": req_id, "body": body, "after_s": time.monotonic() - at}
            )
            return 0, None
        if cmd == "aibot_send_msg":
            chat = str(body.get("chatid") or "")
            if chat not in self._chats_that_wrote:
                return 846604, None  # the real code is not known
            self.messages.append({"req_id": "", "chat": chat, "body": body, "push": True})
            return 0, None
        if cmd.startswith("aibot_upload_media_"):
            return self._upload(cmd.removeprefix("aibot_upload_media_"), body)
        return 40058, None

    def _respond(self, req_id: str, body: dict[str, Any]) -> int:
        kind, chat, at = self._req.get(req_id, ("", "", 0.0))
        if kind != "msg" or req_id in self.expired or time.monotonic() - at > self.req_window_s:
            return 846605
        if body.get("msgtype") != "stream":
            self.messages.append({"req_id": req_id, "chat": chat, "body": body, "push": False})
            return 0
        stream = body.get("stream") or {}
        content = str(stream.get("content") or "")
        if len(content.encode("utf-8")) > 20480:
            return 40009
        bubble = self.bubbles.setdefault(str(stream.get("id")), Bubble(req_id, chat))
        if bubble.finished:  # frozen: an identical resend of the final frame is harmless
            return 0 if content == bubble.content else 846608
        if time.monotonic() - bubble.first_at > self.stream_window_s:
            return 846608
        bubble.content, bubble.finished = content, bool(stream.get("finish"))
        bubble.frames += 1
        bubble.history.append((time.monotonic(), content))
        return 0

    def _upload(self, step: str, body: dict[str, Any]) -> tuple[int, Any]:
        if step == "init":
            total = int(body.get("total_chunks") or 0)
            if body.get("type") not in ("file", "image", "voice", "video") or not 0 < total <= 100:
                return 40009, None
            upload_id = f"up{next(self._ids)}"
            self._uploads[upload_id] = {**body, "chunks": {}}
            return 0, {"upload_id": upload_id}
        upload = self._uploads.get(str(body.get("upload_id")))
        if upload is None:
            return 40009, None
        if step == "chunk":
            index = int(body.get("chunk_index", -1))
            data = base64.b64decode(body.get("base64_data") or "")
            if not 0 <= index < upload["total_chunks"] or len(data) > 512 * 1024:
                return 40009, None
            upload["chunks"][index] = data
            return 0, None
        if step == "finish":
            chunks = upload["chunks"]
            if len(chunks) != upload["total_chunks"]:
                return 40009, None
            data = b"".join(chunks[i] for i in range(len(chunks)))
            if (
                hashlib.md5(data).hexdigest() != upload.get("md5")
                or len(data) != upload["total_size"]
            ):
                return 40009, None
            media_id = f"media{next(self._ids)}"
            self.media[media_id] = {
                "type": upload["type"],
                "data": data,
                "name": upload["filename"],
            }
            return 0, {
                "type": upload["type"],
                "media_id": media_id,
                "created_at": str(int(time.time())),
            }
        return 40058, None
