"""WeCom API client (async httpx; base URL configurable, token fetch included).

wechatpy's enterprise client hard-codes the token host (qyapi.weixin.qq.com) and is
blocking, so it would both ignore AVATARBOT_WECOM__BASE_URL for tokens and stall the event
loop; the handful of calls we need are plain JSON/multipart requests, done here.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx

from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.http import CachedToken, RetryPolicy, send_with_retry

logger = logging.getLogger(__name__)

TOKEN_INVALID_CODES = {40014, 42001, 40001}  # invalid / expired / bad credential token
RATE_LIMIT_CODES = {45009, 45033, -1}  # API frequency limits; -1 = system busy
TOKEN_REFRESH_EARLY_S = 300
MEDIA_LIMITS = {
    "video": 10 * 1024 * 1024,
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}


class WecomAPIError(ExternalServiceError):
    def __init__(self, message: str, errcode: int = 0) -> None:
        super().__init__(message)
        self.errcode = errcode


class WecomClient:
    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        agent_id: str,
        base_url: str = "https://qyapi.weixin.qq.com",
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._token = CachedToken(TOKEN_REFRESH_EARLY_S)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def access_token(self, *, force: bool = False) -> str:
        return await self._token.get(self._fetch_access_token, force=force)

    async def _fetch_access_token(self) -> tuple[str, int]:
        response = await send_with_retry(
            "wecom",
            "gettoken",
            lambda: self._http.get(
                "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
            ),
            self.retry,
        )
        data = _json(response)
        if data.get("errcode", 0) != 0 or not data.get("access_token"):
            raise WecomAPIError(
                f"WeCom gettoken refused: errcode {data.get('errcode')} {data.get('errmsg', '')}",
                int(data.get("errcode") or 0),
            )
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        file_field: tuple[str, str, bytes] | None = None,
    ) -> dict[str, Any]:
        """One API call with the token; refetch the token once, back off on rate limits."""
        refreshed = False
        limited = 0
        while True:
            token = await self.access_token()
            query = {**(params or {}), "access_token": token}

            def _send(query: dict[str, Any] = query) -> Any:
                files = None
                if file_field is not None:
                    field, name, content = file_field
                    files = {field: (name, content, "application/octet-stream")}
                return self._http.request(method, path, params=query, json=json_body, files=files)

            response = await send_with_retry("wecom", f"{method} {path}", _send, self.retry)
            data = _json(response)
            errcode = int(data.get("errcode", 0))
            if errcode == 0:
                return data
            if errcode in TOKEN_INVALID_CODES and not refreshed:
                refreshed = True
                await self.access_token(force=True)
                continue
            if errcode in RATE_LIMIT_CODES and limited < self.retry.attempts - 1:
                limited += 1
                await asyncio.sleep(self.retry.delay(limited) * 2)
                continue
            raise WecomAPIError(
                f"WeCom {path} failed: errcode {errcode} {data.get('errmsg', '')}".strip(), errcode
            )

    async def upload_media(self, path: Path, media_type: str) -> str:
        """media/upload (video ≤10 MB, image ≤10 MB, voice AMR ≤2 MB, file ≤20 MB) -> media_id."""
        content = await asyncio.to_thread(path.read_bytes)
        limit = MEDIA_LIMITS.get(media_type)
        if limit is not None and len(content) > limit:
            raise WecomAPIError(
                f"{path.name} is {len(content) / 1e6:.1f} MB, over WeCom's {media_type} limit"
            )
        data = await self.call(
            "POST",
            "/cgi-bin/media/upload",
            params={"type": media_type},
            file_field=("media", path.name, content),
        )
        return str(data["media_id"])

    async def download_media(self, media_id: str, *, max_bytes: int) -> bytes:
        """A user's image/voice/file by media_id (GET /cgi-bin/media/get), capped while streaming.

        MediaTooLarge past `max_bytes`; WecomAPIError when WeCom answers an error envelope."""
        from avatarbot.integrations.media_download import error_envelope, is_json, read_capped

        refreshed = False
        while True:
            token = await self.access_token()
            try:
                async with self._http.stream(
                    "GET",
                    "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                ) as response:
                    if response.status_code == 200 and not is_json(response):
                        return await read_capped(response, max_bytes)
                    data = await error_envelope(response)
                    status = response.status_code
            except httpx.HTTPError as exc:
                raise WecomAPIError(f"WeCom media download failed: {exc}") from exc
            errcode = int(data.get("errcode", -1))
            if errcode in TOKEN_INVALID_CODES and not refreshed:
                refreshed = True
                await self.access_token(force=True)
                continue
            raise WecomAPIError(
                f"WeCom refused the media (HTTP {status}, errcode {errcode} "
                f"{data.get('errmsg', '')})".strip(),
                errcode,
            )

    async def send_message(
        self, *, touser: str, msgtype: str, payload: dict[str, Any], dedup: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "touser": touser,
            "msgtype": msgtype,
            "agentid": _agent(self.agent_id),
            msgtype: payload,
        }
        if dedup:  # WeCom drops a message identical to one sent within the interval
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = DUPLICATE_CHECK_INTERVAL_S
        return await self.call("POST", "/cgi-bin/message/send", json_body=body)

    async def send_appchat(
        self, *, chatid: str, msgtype: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"chatid": chatid, "msgtype": msgtype, msgtype: payload}
        return await self.call("POST", "/cgi-bin/appchat/send", json_body=body)


DUPLICATE_CHECK_INTERVAL_S = 4 * 3600  # the most WeCom allows


def _agent(agent_id: str) -> int | str:
    return int(agent_id) if agent_id.isdigit() else agent_id


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise WecomAPIError(f"WeCom answered HTTP {response.status_code} without JSON") from None
    if not isinstance(data, dict):
        raise WecomAPIError("WeCom answered with unexpected JSON")
    return data
