"""A fake WeCom API on 127.0.0.1: gettoken, media/upload, message/send, appchat/send, group robots.

Records every request; can fail the next N calls of a path (HTTP status or an errcode
body) and expire issued tokens (errcode 42001).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.helpers.servers import FailurePlan, Recorded, RunningServer, start_uvicorn

CORP_ID = "wx49f0ab532d5d035a"
TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


class FakeWecom:
    def __init__(
        self,
        *,
        corp_id: str = CORP_ID,
        secret: str = "corp-secret",
        robot_limit_per_min: int = 20,
        robot_window_s: float = 60.0,
    ) -> None:
        self.robot_window_s = robot_window_s
        self.corp_id = corp_id
        self.secret = secret
        self.robot_limit_per_min = robot_limit_per_min
        self.requests: list[Recorded] = []
        self.failures = FailurePlan()
        self.valid_tokens: set[str] = set()
        self.messages: list[dict[str, Any]] = []  # message/send and appchat/send bodies
        self.duplicates_dropped = 0  # sends dropped by enable_duplicate_check
        self.robot_messages: list[dict[str, Any]] = []
        self.robot_times: list[float] = []
        self.robot_refusals = 0
        self.media: dict[str, dict[str, Any]] = {}
        self.user_media: dict[str, bytes] = {}  # media/get: what users sent, by MediaId
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server: RunningServer | None = None
        self.app = self._build()

    def start(self) -> FakeWecom:
        self.server = start_uvicorn(self.app)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def calls(self, path_prefix: str) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path.startswith(path_prefix)]

    def sent(self, msgtype: str | None = None) -> list[dict[str, Any]]:
        return [m for m in list(self.messages) if msgtype is None or m.get("msgtype") == msgtype]

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
            if ctype.startswith("multipart/form-data"):
                form = await request.form()
                for key, value in form.multi_items():
                    if hasattr(value, "read"):
                        rec.files[key] = (value.filename or "", await value.read())
                    else:
                        rec.form[key] = str(value)
            elif body:
                try:
                    rec.json = json.loads(body)
                except ValueError:
                    rec.json = None
            request.state.recorded = rec
            fake.requests.append(rec)
            failure = fake.failures.take(request.url.path)
            if failure is not None:
                return JSONResponse(
                    failure.body or {"errcode": -1, "errmsg": "system busy"},
                    status_code=failure.status,
                )
            return await call_next(request)

        def token_error(request: Request) -> JSONResponse | None:
            token = request.query_params.get("access_token", "")
            if not token:
                return JSONResponse({"errcode": 41001, "errmsg": "access_token missing"})
            if token not in fake.valid_tokens:
                return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
            return None

        @app.get("/cgi-bin/gettoken")
        async def gettoken(corpid: str = "", corpsecret: str = "") -> Any:
            if corpid != fake.corp_id or corpsecret != fake.secret:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            token = fake._next("wt-")
            fake.valid_tokens.add(token)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

        @app.post("/cgi-bin/media/upload")
        async def upload(request: Request, type: str = "") -> Any:
            if (error := token_error(request)) is not None:
                return error
            rec: Recorded = request.state.recorded
            if "media" not in rec.files or type not in ("video", "image", "voice", "file"):
                return {"errcode": 40004, "errmsg": "invalid media type"}
            name, data = rec.files["media"]
            media_id = fake._next(f"{type}-media-")
            fake.media[media_id] = {"type": type, "name": name, "data": data}
            return {
                "errcode": 0,
                "errmsg": "",
                "type": type,
                "media_id": media_id,
                "created_at": str(int(time.time())),
            }

        @app.get("/cgi-bin/media/get")
        async def media_get(request: Request, media_id: str = "") -> Any:
            from fastapi.responses import Response

            if (error := token_error(request)) is not None:
                return error
            data = fake.user_media.get(media_id)
            if data is None:
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            return Response(data, media_type="application/octet-stream")

        @app.post("/cgi-bin/message/send")
        async def message_send(request: Request) -> Any:
            if (error := token_error(request)) is not None:
                return error
            body = request.state.recorded.json or {}
            if not body.get("touser") or not body.get("msgtype") or "agentid" not in body:
                return {"errcode": 40003, "errmsg": "invalid user"}
            if body.get("enable_duplicate_check"):
                # WeCom's check: same receiver, type and content within the interval -> dropped
                # (answered ok, like the platform does, but not delivered again).
                content = json.dumps(body.get(body["msgtype"]), sort_keys=True)
                same = [
                    m
                    for m in fake.messages
                    if m.get("touser") == body["touser"]
                    and m.get("msgtype") == body["msgtype"]
                    and json.dumps(m.get(body["msgtype"]), sort_keys=True) == content
                ]
                if same:
                    fake.duplicates_dropped += 1
                    return {"errcode": 0, "errmsg": "ok", "msgid": fake._next("msg-")}
            fake.messages.append({"api": "message/send", **body})
            return {"errcode": 0, "errmsg": "ok", "msgid": fake._next("msg-")}

        @app.post("/cgi-bin/appchat/send")
        async def appchat_send(request: Request) -> Any:
            if (error := token_error(request)) is not None:
                return error
            body = request.state.recorded.json or {}
            if not body.get("chatid") or not body.get("msgtype"):
                return {"errcode": 86003, "errmsg": "chat not found"}
            fake.messages.append({"api": "appchat/send", **body})
            return {"errcode": 0, "errmsg": "ok"}

        @app.post("/cgi-bin/webhook/send")
        async def robot_send(request: Request, key: str = "") -> Any:
            now = time.monotonic()
            with fake._lock:
                recent = [t for t in fake.robot_times if now - t < fake.robot_window_s]
                if len(recent) >= fake.robot_limit_per_min:
                    fake.robot_refusals += 1
                    return {"errcode": 45009, "errmsg": "api freq out of limit"}
                fake.robot_times.append(now)
            fake.robot_messages.append({"key": key, **(request.state.recorded.json or {})})
            return {"errcode": 0, "errmsg": "ok"}

        @app.post("/cgi-bin/webhook/upload_media")
        async def robot_upload(request: Request, key: str = "", type: str = "") -> Any:
            rec: Recorded = request.state.recorded
            if "media" not in rec.files:
                return {"errcode": 40004, "errmsg": "no media"}
            media_id = fake._next("robot-media-")
            fake.media[media_id] = {
                "type": type,
                "name": rec.files["media"][0],
                "data": rec.files["media"][1],
            }
            return {"errcode": 0, "errmsg": "ok", "type": type, "media_id": media_id}

        return app


def callback_request(
    xml: str, *, nonce: str = "nonce1", timestamp: str = "1700000000"
) -> tuple[dict[str, str], bytes]:
    """The query and body WeCom posts for one message (encrypted and signed)."""
    from avatarbot.integrations.wecom.crypto import WecomCrypto, parse_xml

    crypto = WecomCrypto(token=TOKEN, encoding_aes_key=AES_KEY, corp_id=CORP_ID)
    envelope = parse_xml(crypto.encrypt(xml, nonce=nonce, timestamp=timestamp))
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    ).encode()
    return {"msg_signature": envelope["MsgSignature"], "timestamp": timestamp, "nonce": nonce}, body


def text_message(*, msg_id: str, user: str, content: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )


def media_message(*, msg_id: str, user: str, msg_type: str, fields: dict[str, str]) -> str:
    """An image / voice / file / location … callback (fields: MediaId, Recognition, …)."""
    extra = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"{extra}<MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )
