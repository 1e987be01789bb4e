"""Feishu / Lark open-platform API client (async, base URL configurable).

Why httpx and not lark-oapi here: lark-oapi's async methods still fetch the tenant token with
a blocking `requests` call (it would stall the event loop) and cache it per process and
app_id rather than per base URL, it has no call for bot/v3/info, and we need our own retry
and idempotency rules around every send. The endpoints used are few and stable, so a thin
async client is simpler and fully testable against a fake server. lark-oapi is still used
for the long connection (long_connection.py), where it is the only implementation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mimetypes
from pathlib import Path
from typing import Any

import httpx

from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.http import CachedToken, RetryPolicy, send_with_retry

logger = logging.getLogger(__name__)

TOKEN_INVALID_CODES = {99991661, 99991663, 99991668}  # missing / invalid / expired tenant token
RATE_LIMIT_CODES = {99991400, 230020}  # app frequency limit / chat send frequency limit
TOKEN_REFRESH_EARLY_S = 300  # renew 5 min before expiry: a token never dies mid-upload
MAX_FILE_BYTES = 30 * 1024 * 1024
UUID_MAX = 50  # Feishu's limit on a message's idempotency uuid


def feishu_uuid(key: str) -> str:
    """The key itself when it fits, else a digest of all of it.

    Cutting a long key to 50 characters made keys that differ only at the end the same uuid
    (every fire of one schedule in a month: "schedule:<id>:2026-12-..."), so Feishu dropped
    all but the first as a retry."""
    if len(key) <= UUID_MAX:
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:UUID_MAX]


MAX_IMAGE_BYTES = 10 * 1024 * 1024


class FeishuAPIError(ExternalServiceError):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class FeishuClient:
    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        base_url: str = "https://open.feishu.cn",
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.app_id = app_id
        self._app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._token = CachedToken(TOKEN_REFRESH_EARLY_S)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- token -----------------------------------------------------------------------

    async def tenant_token(self, *, force: bool = False) -> str:
        return await self._token.get(self._fetch_tenant_token, force=force)

    async def _fetch_tenant_token(self) -> tuple[str, int]:
        response = await send_with_retry(
            "feishu",
            "tenant_access_token",
            lambda: self._http.post(
                "/open-apis/auth/v3/tenant_access_token/internal",
                json={"app_id": self.app_id, "app_secret": self._app_secret},
            ),
            self.retry,
        )
        data = _json(response)
        if data.get("code") != 0 or not data.get("tenant_access_token"):
            raise FeishuAPIError(
                f"Feishu token request refused: code {data.get('code')} {data.get('msg', '')}",
                int(data.get("code") or 0),
            )
        return str(data["tenant_access_token"]), int(data.get("expire") or 7200)

    # --- generic call ----------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        file_field: tuple[str, str, bytes] | None = None,
    ) -> dict[str, Any]:
        """One API call: token, retries on 5xx/network/rate limit, one token refresh; returns `data`."""
        refreshed = False
        rate_limited = 0
        while True:
            token = await self.tenant_token()

            def _send(token: str = token) -> Any:
                files = None
                if file_field is not None:
                    field, name, content = file_field
                    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                    files = {field: (name, content, mime)}
                return self._http.request(
                    method,
                    path,
                    json=json_body,
                    params=params,
                    data=form,
                    files=files,
                    headers={"Authorization": f"Bearer {token}"},
                )

            response = await send_with_retry("feishu", f"{method} {path}", _send, self.retry)
            data = _json(response)
            code = int(data.get("code", -1))
            if code == 0:
                return dict(data.get("data") or {})
            if code in TOKEN_INVALID_CODES and not refreshed:
                refreshed = True
                await self.tenant_token(force=True)
                continue
            if code in RATE_LIMIT_CODES and rate_limited < self.retry.attempts - 1:
                rate_limited += 1
                await asyncio.sleep(self.retry.delay(rate_limited))
                continue
            raise FeishuAPIError(
                f"Feishu {method} {path} failed: code {code} {data.get('msg', '')}".strip(), code
            )

    # --- endpoints -------------------------------------------------------------------

    async def bot_open_id(self) -> str:
        data = await self.call("GET", "/open-apis/bot/v3/info")
        # This endpoint answers {"code":0,"bot":{...}} (no "data" wrapper) on the real platform.
        bot = data.get("bot") or {}
        return str(bot.get("open_id") or "")

    async def upload_file(
        self, path: Path, *, file_type: str, duration_ms: int | None = None
    ) -> str:
        content = await asyncio.to_thread(path.read_bytes)
        if len(content) > MAX_FILE_BYTES:
            raise FeishuAPIError(f"{path.name} is larger than Feishu's 30 MB file limit")
        form = {"file_type": file_type, "file_name": path.name}
        if duration_ms is not None:
            form["duration"] = str(int(duration_ms))
        data = await self.call(
            "POST", "/open-apis/im/v1/files", form=form, file_field=("file", path.name, content)
        )
        return str(data["file_key"])

    async def upload_image(self, path: Path) -> str:
        content = await asyncio.to_thread(path.read_bytes)
        if len(content) > MAX_IMAGE_BYTES:
            raise FeishuAPIError(f"{path.name} is larger than Feishu's 10 MB image limit")
        data = await self.call(
            "POST",
            "/open-apis/im/v1/images",
            form={"image_type": "message"},
            file_field=("image", path.name, content),
        )
        return str(data["image_key"])

    async def send_message(
        self,
        receive_id: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        receive_id_type: str = "chat_id",
        uuid: str = "",
    ) -> str:
        """Send to a chat (or user); `uuid` makes a retried send a no-op on the platform."""
        body: dict[str, Any] = {
            "receive_id": receive_id,
            "msg_type": msg_type,
            "content": json.dumps(content, ensure_ascii=False),
        }
        if uuid:
            body["uuid"] = feishu_uuid(uuid)
        data = await self.call(
            "POST",
            "/open-apis/im/v1/messages",
            params={"receive_id_type": receive_id_type},
            json_body=body,
        )
        return str(data.get("message_id") or "")

    async def reply_message(
        self,
        message_id: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        uuid: str = "",
        reply_in_thread: bool = False,
    ) -> str:
        """Reply to a message; `reply_in_thread` answers inside its topic thread."""
        body: dict[str, Any] = {
            "msg_type": msg_type,
            "content": json.dumps(content, ensure_ascii=False),
        }
        if reply_in_thread:
            body["reply_in_thread"] = True
        if uuid:
            body["uuid"] = feishu_uuid(uuid)
        data = await self.call(
            "POST", f"/open-apis/im/v1/messages/{message_id}/reply", json_body=body
        )
        return str(data.get("message_id") or "")

    async def get_message(self, message_id: str) -> dict[str, Any]:
        """One message ({"msg_type", "body": {"content"}, …}); {} when Feishu lists none."""
        data = await self.call("GET", f"/open-apis/im/v1/messages/{message_id}")
        items = data.get("items") or []
        return dict(items[0]) if items and isinstance(items[0], dict) else {}

    async def download_resource(
        self, message_id: str, file_key: str, *, kind: str, max_bytes: int
    ) -> bytes:
        """A user's image/file/audio from a message (GET .../resources/{file_key}?type=image|file).

        Streams and stops past `max_bytes` (MediaTooLarge); FeishuAPIError when refused."""
        from avatarbot.integrations.media_download import error_envelope, is_json, read_capped

        path = f"/open-apis/im/v1/messages/{message_id}/resources/{file_key}"
        refreshed = False
        while True:
            token = await self.tenant_token()
            try:
                async with self._http.stream(
                    "GET",
                    path,
                    params={"type": kind},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    if response.status_code == 200 and not is_json(response):
                        return await read_capped(response, max_bytes)
                    data = await error_envelope(response)
                    status = response.status_code
            except httpx.HTTPError as exc:
                raise FeishuAPIError(f"Feishu resource download failed: {exc}") from exc
            code = int(data.get("code", -1))
            if code in TOKEN_INVALID_CODES and not refreshed:
                refreshed = True
                await self.tenant_token(force=True)
                continue
            raise FeishuAPIError(
                f"Feishu refused the resource (HTTP {status}, code {code} {data.get('msg', '')})",
                code,
            )

    async def patch_card(self, message_id: str, card: dict[str, Any]) -> None:
        await self.call(
            "PATCH",
            f"/open-apis/im/v1/messages/{message_id}",
            json_body={"content": json.dumps(card, ensure_ascii=False)},
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise FeishuAPIError(f"Feishu answered HTTP {response.status_code} without JSON") from None
    if not isinstance(data, dict):
        raise FeishuAPIError("Feishu answered with unexpected JSON")
    # bot/v3/info puts its payload at the top level; fold it into "data" for call().
    if "bot" in data and "data" not in data:
        data["data"] = {"bot": data["bot"]}
    return data
