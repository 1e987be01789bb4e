"""Plays WeCom's side of the AI-bot webhook: encrypted POSTs, URL verification, stream polls.

Encrypts with wechatpy's PrpCrypto (receiveid "") so our own crypto is checked against an
independent implementation, and checks the signature of every passive reply.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
from typing import Any

import httpx
from wechatpy.crypto import PrpCrypto

TOKEN = "aibot-token"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class WebhookPoller:
    def __init__(self, url: str, token: str = TOKEN, aes_key: str = AES_KEY) -> None:
        self.url = url
        self.token = token
        self.prp = PrpCrypto(base64.b64decode(aes_key + "="))
        self._ids = itertools.count(1)

    def encrypt(self, plain: str) -> str:
        return self.prp.encrypt(plain, "").decode()

    def verify(self, echo: str, *, forge: bool = False) -> httpx.Response:
        echostr = self.encrypt(echo)
        ts, nonce = str(int(time.time())), "n1"
        sig = "0" * 40 if forge else _sign(self.token, ts, nonce, echostr)
        params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        return httpx.get(self.url, params=params, timeout=5)

    def post_raw(self, encrypt: str, *, forge: bool = False) -> httpx.Response:
        ts, nonce = str(int(time.time())), f"nonce{next(self._ids)}"
        sig = "f" * 40 if forge else _sign(self.token, ts, nonce, encrypt)
        params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
        return httpx.post(self.url, params=params, json={"encrypt": encrypt}, timeout=5)

    def post(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST one callback; the decrypted passive reply (None for an empty 200)."""
        response = self.post_raw(self.encrypt(json.dumps(body, ensure_ascii=False)))
        assert response.status_code == 200, response.text
        if not response.content:
            return None
        sealed = response.json()
        expected = _sign(self.token, str(sealed["timestamp"]), sealed["nonce"], sealed["encrypt"])
        assert sealed["msgsignature"] == expected and isinstance(sealed["timestamp"], int)
        return json.loads(self.prp.decrypt(sealed["encrypt"], ""))

    def message(
        self, user: str, content: str, msgid: str = "", **extra: Any
    ) -> dict[str, Any] | None:
        body = {
            "msgid": msgid or f"wm{next(self._ids)}",
            "aibotid": "AIBOT",
            "chattype": "single",
            "from": {"userid": user},
            "msgtype": "text",
            "text": {"content": content},
            **extra,
        }
        return self.post(body)

    def poll(self, stream_id: str, *, every_s: float = 0.2, timeout: float = 120) -> list[str]:
        """Refresh the stream like WeCom until finish: true; returns every snapshot seen."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.post(
                {
                    "msgid": f"poll{next(self._ids)}",
                    "msgtype": "stream",
                    "stream": {"id": stream_id},
                }
            )
            assert answer is not None and answer["stream"]["id"] == stream_id
            content = answer["stream"]["content"]
            assert len(content.encode()) <= 20480
            if not seen or seen[-1] != content:
                seen.append(content)
            if answer["stream"]["finish"]:
                return seen
            time.sleep(every_s)  # WeCom's own poll rhythm, not a wait for a result
        raise AssertionError(f"stream {stream_id} did not finish within {timeout}s")
