"""A fake Feishu open platform on 127.0.0.1: token, bot info, uploads, send/reply/patch, custom bot.

Records every request; can be told to fail the next N calls of a path (HTTP status or a
non-zero `code`), and to invalidate issued tenant tokens (code 99991663).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from avatarbot.integrations.feishu.crypto import custom_bot_sign
from tests.helpers.fake_cardkit import FakeCardKit
from tests.helpers.servers import FailurePlan, Recorded, RunningServer, start_uvicorn

BOT_OPEN_ID = "ou_bot_0001"


class FakeFeishu:
    def __init__(
        self, *, app_id: str = "cli_test", app_secret: str = "secret", hook_secret: str = ""
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.hook_secret = hook_secret
        self.requests: list[Recorded] = []
        self.failures = FailurePlan()
        self.valid_tokens: set[str] = set()
        self.messages: list[dict[str, Any]] = []  # sent messages after uuid dedup
        self.patches: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}  # file_key/image_key -> form + bytes
        # Users' media: (message_id, file_key) -> bytes, or an int = a stream of that many
        # bytes without Content-Length (a client must stop reading at its cap).
        self.resources: dict[tuple[str, str], bytes | int] = {}
        self.resource_bytes_sent = 0
        self.user_messages: dict[str, tuple[str, dict[str, Any]]] = {}  # GET a message by id
        self._seen_uuids: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server: RunningServer | None = None
        # Long connection (lark-oapi ws protocol: protobuf frames over a WebSocket).
        self.ws_connections = 0
        self.ws_acks: list[dict[str, Any]] = []
        self._ws: WebSocket | None = None
        self._ws_loop: Any = None
        self.cardkit = FakeCardKit()  # CardKit card entities (streamed answers)
        self.app = self._build()

    # --- control ---------------------------------------------------------------------

    def start(self) -> FakeFeishu:
        self.server = start_uvicorn(self.app)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def invalidate_tokens(self) -> None:
        self.valid_tokens.clear()

    def calls(self, path_prefix: str, method: str | None = None) -> list[Recorded]:
        return [
            r
            for r in list(self.requests)
            if r.path.startswith(path_prefix) and (method is None or r.method == method)
        ]

    def sent(self, msg_type: str | None = None) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if msg_type is None or m["msg_type"] == msg_type]

    # --- long connection ---------------------------------------------------------------

    @property
    def ws_connected(self) -> bool:
        return self._ws is not None

    def ws_push_event(self, payload: dict[str, Any]) -> None:
        """Send one event frame to the connected SDK client (called from the test thread)."""
        import asyncio

        from lark_oapi.ws.pb.pbbp2_pb2 import Frame

        frame = Frame()
        frame.SeqID, frame.LogID, frame.service, frame.method = 1, 1, 1, 1  # method 1 = data
        for key, value in {
            "type": "event",
            "message_id": self._next("ws-msg-"),
            "trace_id": "trace",
            "sum": "1",
            "seq": "0",
        }.items():
            header = frame.headers.add()
            header.key, header.value = key, value
        frame.payload = json.dumps(payload, ensure_ascii=False).encode()
        ws, loop = self._ws, self._ws_loop
        assert ws is not None and loop is not None, "no long connection is open"
        asyncio.run_coroutine_threadsafe(ws.send_bytes(frame.SerializeToString()), loop).result(5)

    def ws_drop(self) -> None:
        """Close the socket from the server side (what a network blip looks like)."""
        import asyncio

        ws, loop = self._ws, self._ws_loop
        if ws is not None and loop is not None:
            asyncio.run_coroutine_threadsafe(ws.close(code=1011), loop).result(5)

    # --- app -------------------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids)}"

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            body = await request.body()
            rec = Recorded(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
            )
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("application/json") and body:
                rec.json = json.loads(body)
            elif ctype.startswith("multipart/form-data"):
                form = await request.form()
                for key, value in form.multi_items():
                    if hasattr(value, "read"):
                        rec.files[key] = (value.filename or "", await value.read())
                    else:
                        rec.form[key] = str(value)
            request.state.recorded = rec
            fake.requests.append(rec)
            failure = fake.failures.take(request.url.path)
            if failure is not None:
                return JSONResponse(
                    failure.body or {"code": 1, "msg": "injected failure"},
                    status_code=failure.status,
                )
            return await call_next(request)

        def authorised(request: Request) -> JSONResponse | None:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in fake.valid_tokens:
                return JSONResponse(
                    {"code": 99991663, "msg": "Invalid access token"}, status_code=400
                )
            return None

        @app.post("/open-apis/auth/v3/tenant_access_token/internal")
        async def token(request: Request) -> Any:
            body = request.state.recorded.json or {}
            if body.get("app_id") != fake.app_id or body.get("app_secret") != fake.app_secret:
                return JSONResponse({"code": 10014, "msg": "app secret invalid"})
            value = fake._next("t-")
            fake.valid_tokens.add(value)
            return {"code": 0, "msg": "ok", "tenant_access_token": value, "expire": 7200}

        @app.get("/open-apis/bot/v3/info")
        async def bot_info(request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            return {
                "code": 0,
                "msg": "ok",
                "bot": {"open_id": BOT_OPEN_ID, "app_name": "avatarbot"},
            }

        @app.post("/open-apis/im/v1/files")
        async def upload_file(request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            rec: Recorded = request.state.recorded
            if "file" not in rec.files or not rec.form.get("file_type"):
                return JSONResponse({"code": 234001, "msg": "invalid request"}, status_code=400)
            key = fake._next("file_v2_")
            fake.uploads[key] = {
                "form": dict(rec.form),
                "name": rec.files["file"][0],
                "data": rec.files["file"][1],
            }
            return {"code": 0, "msg": "ok", "data": {"file_key": key}}

        @app.post("/open-apis/im/v1/images")
        async def upload_image(request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            rec: Recorded = request.state.recorded
            if "image" not in rec.files:
                return JSONResponse({"code": 234001, "msg": "invalid request"}, status_code=400)
            key = fake._next("img_v2_")
            fake.uploads[key] = {
                "form": dict(rec.form),
                "name": rec.files["image"][0],
                "data": rec.files["image"][1],
            }
            return {"code": 0, "msg": "ok", "data": {"image_key": key}}

        fake.cardkit.install(app, authorised)

        def store_message(body: dict[str, Any], extra: dict[str, Any]) -> Any:
            uuid = body.get("uuid")
            content = json.loads(body.get("content") or "{}")
            if body.get("msg_type") == "interactive" and content.get("type") == "card":
                card_id = str((content.get("data") or {}).get("card_id") or "")
                if card_id not in fake.cardkit.cards:  # a card entity must exist to be sent
                    return JSONResponse({"code": 200740, "msg": "card not found"}, status_code=400)
            with fake._lock:
                if uuid and uuid in fake._seen_uuids:  # the platform's idempotency
                    return {"code": 0, "msg": "ok", "data": {"message_id": fake._seen_uuids[uuid]}}
            message_id = fake._next("om_")
            entry = {
                "message_id": message_id,
                "msg_type": body.get("msg_type"),
                "content": json.loads(body.get("content") or "{}"),
                "uuid": uuid,
                "at": time.monotonic(),  # when it reached the chat (latency benchmarks)
                **extra,
            }
            with fake._lock:
                if uuid:
                    fake._seen_uuids[uuid] = message_id
                fake.messages.append(entry)
            return {"code": 0, "msg": "ok", "data": {"message_id": message_id}}

        @app.post("/open-apis/im/v1/messages")
        async def send(request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            id_type = request.query_params.get("receive_id_type", "")
            if not id_type or not body.get("receive_id") or not body.get("msg_type"):
                return JSONResponse({"code": 230001, "msg": "invalid params"}, status_code=400)
            return store_message(
                body, {"receive_id": body["receive_id"], "receive_id_type": id_type}
            )

        @app.post("/open-apis/im/v1/messages/{message_id}/reply")
        async def reply(message_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            return store_message(
                body,
                {"reply_to": message_id, "reply_in_thread": bool(body.get("reply_in_thread"))},
            )

        @app.get("/open-apis/im/v1/messages/{message_id}")
        async def get_message(message_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            found = fake.user_messages.get(message_id)
            if found is None:
                return JSONResponse({"code": 230002, "msg": "message not found"}, 400)
            msg_type, content = found
            item = {
                "message_id": message_id,
                "msg_type": msg_type,
                "body": {"content": json.dumps(content, ensure_ascii=False)},
            }
            return {"code": 0, "msg": "ok", "data": {"items": [item]}}

        @app.get("/open-apis/im/v1/messages/{message_id}/resources/{file_key}")
        async def resource(message_id: str, file_key: str, request: Request) -> Any:
            from fastapi.responses import Response, StreamingResponse

            if (denied := authorised(request)) is not None:
                return denied
            if request.query_params.get("type") not in ("image", "file"):
                return JSONResponse({"code": 234001, "msg": "Invalid request param."}, 400)
            found = fake.resources.get((message_id, file_key))
            if found is None:
                return JSONResponse({"code": 234003, "msg": "File not in msg."}, 400)
            if isinstance(found, bytes):
                fake.resource_bytes_sent += len(found)
                return Response(found, media_type="application/octet-stream")

            async def endless(total: int = found) -> Any:
                chunk = b"\0" * 65536
                for _ in range(total // len(chunk)):
                    fake.resource_bytes_sent += len(chunk)
                    yield chunk

            return StreamingResponse(endless(), media_type="application/octet-stream")

        @app.patch("/open-apis/im/v1/messages/{message_id}")
        async def patch(message_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            fake.patches.append(
                {"message_id": message_id, "content": json.loads(body.get("content") or "{}")}
            )
            return {"code": 0, "msg": "ok", "data": {}}

        @app.post("/callback/ws/endpoint")
        async def ws_endpoint(request: Request) -> Any:
            body = request.state.recorded.json or {}
            if body.get("AppID") != fake.app_id or body.get("AppSecret") != fake.app_secret:
                return {"code": 514, "msg": "auth failed"}
            host = request.url.netloc
            return {
                "code": 0,
                "data": {
                    "URL": f"ws://{host}/ws?device_id=dev1&service_id=1",
                    "ClientConfig": {
                        "ReconnectCount": -1,
                        "ReconnectInterval": 1,
                        "ReconnectNonce": 0,
                        "PingInterval": 30,
                    },
                },
            }

        @app.websocket("/ws")
        async def ws(websocket: WebSocket) -> None:
            import asyncio

            from lark_oapi.ws.pb.pbbp2_pb2 import Frame

            await websocket.accept()
            fake.ws_connections += 1
            fake._ws, fake._ws_loop = websocket, asyncio.get_running_loop()
            try:
                while True:
                    data = await websocket.receive_bytes()
                    frame = Frame()
                    frame.ParseFromString(data)
                    if frame.method == 1:  # the client's answer to a data frame
                        fake.ws_acks.append(json.loads(frame.payload or b"{}"))
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                if fake._ws is websocket:
                    fake._ws = None

        @app.post("/open-apis/bot/v2/hook/{token}")
        async def custom_bot(token: str, request: Request) -> Any:
            body = request.state.recorded.json or {}
            if fake.hook_secret:
                expected = custom_bot_sign(int(body.get("timestamp") or 0), fake.hook_secret)
                if body.get("sign") != expected:
                    return {
                        "code": 19021,
                        "msg": "sign match fail or timestamp is not within one hour",
                    }
            return {"code": 0, "msg": "success", "data": {}}

        return app


# --- what the platform sends us ------------------------------------------------------


def message_event(
    *,
    event_id: str,
    chat_id: str,
    text: str,
    token: str,
    chat_type: str = "p2p",
    sender_open_id: str = "ou_user_1",
    mention_bot: bool = False,
    message_id: str = "",
    thread_id: str = "",
) -> dict[str, Any]:
    mentions = []
    if mention_bot:
        text = f"@_user_1 {text}"
        mentions.append(
            {
                "key": "@_user_1",
                "id": {"open_id": BOT_OPEN_ID, "union_id": "on_b"},
                "name": "Renamed Bot",
            }
        )
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id,
            "event_type": "im.message.receive_v1",
            "create_time": "1700000000000",
            "token": token,
            "app_id": "cli_test",
            "tenant_key": "tenant",
        },
        "event": {
            "sender": {
                "sender_id": {"open_id": sender_open_id, "user_id": "u1"},
                "sender_type": "user",
            },
            "message": {
                "message_id": message_id or f"om_in_{event_id}",
                "chat_id": chat_id,
                "chat_type": chat_type,
                "message_type": "text",
                "content": json.dumps({"text": text}, ensure_ascii=False),
                "mentions": mentions,
                **({"thread_id": thread_id} if thread_id else {}),
            },
        },
    }


def media_event(
    *,
    event_id: str,
    chat_id: str,
    token: str,
    message_type: str,
    content: dict[str, Any],
    sender_open_id: str = "ou_user_1",
) -> dict[str, Any]:
    """A receive_v1 event of any message type (image, audio, file, post, sticker, …)."""
    event = message_event(
        event_id=event_id, chat_id=chat_id, text="", token=token, sender_open_id=sender_open_id
    )
    event["event"]["message"]["message_type"] = message_type
    event["event"]["message"]["content"] = json.dumps(content, ensure_ascii=False)
    return event


def signed_body(
    payload: dict[str, Any],
    encrypt_key: str,
    *,
    timestamp: str = "1700000000",
    nonce: str = "n0nce",
) -> tuple[bytes, dict[str, str]]:
    """Encrypt a payload the way Feishu does and sign the raw body (X-Lark-Signature)."""
    from avatarbot.integrations.feishu.crypto import encrypt, signature

    raw = json.dumps(
        {"encrypt": encrypt(encrypt_key, json.dumps(payload, ensure_ascii=False))}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Lark-Request-Timestamp": timestamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature(timestamp, nonce, encrypt_key, raw),
    }
    return raw, headers
