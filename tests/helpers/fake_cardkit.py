"""CardKit endpoints for the fake Feishu (shared/spec/PROTOCOLS-CHAT2.md §2.8).

Enforces what real users trip over: the per-card strictly increasing `sequence` (300317),
at most 10 operations in any 1-s window per card (HTTP 429), streaming mode for content
PUTs, create-time card checks. Same uuid on a card = no-op. Keeps per-card history.
Codes the spec marks unknown (rate limit, element/streaming refusals) use stand-in values.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

RATE_LIMITED = 99991400  # stand-in (real value unknown)
NOT_STREAMING = 300309  # stand-in
BAD_ELEMENT = 300308  # stand-in
OPS_PER_S = 10


@dataclass
class FakeCard:
    card_id: str
    card: dict[str, Any]
    streaming: bool
    last_sequence: int = 0
    uuids: set[str] = field(default_factory=set)
    op_times: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # accepted ops
    shown: dict[str, str] = field(default_factory=dict)  # element_id -> text shown now
    sequence_errors: int = 0
    rate_limited: int = 0

    @property
    def text(self) -> str:
        return self.shown.get("answer", "")

    def content_updates(self, element_id: str = "answer") -> list[str]:
        return [
            h["content"]
            for h in self.history
            if h["op"] == "content" and h["element_id"] == element_id
        ]

    @property
    def ended(self) -> bool:
        return not self.streaming


def _error(code: int, msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _parse_card(data: Any) -> tuple[dict[str, Any] | None, JSONResponse | None]:
    """Create-time checks of §2.6 on a card JSON 2.0 string."""
    if not isinstance(data, str) or not 1 <= len(data) <= 3_000_000:
        return None, _error(10002, "data must be a card JSON string")
    if len(data.encode()) > 30 * 1024:
        return None, _error(200860, "card content exceeds 30 KB")
    try:
        card = json.loads(data)
    except ValueError:
        return None, _error(200220, "card JSON invalid")
    if not isinstance(card, dict) or card.get("schema") != "2.0":
        return None, _error(300303, "card schema must be 2.0")
    config = card.get("config") or {}
    if config.get("update_multi") is False:
        return None, _error(300302, "update_multi must be true")
    elements = (card.get("body") or {}).get("elements") or []
    if not elements:
        return None, _error(300307, "card is empty")
    if len(elements) > 200:
        return None, _error(300305, "more than 200 components")
    ids = [e.get("element_id") for e in elements if e.get("element_id")]
    if len(ids) != len(set(ids)):
        return None, _error(300301, "duplicate element_id")
    return card, None


def _shown(card: dict[str, Any]) -> dict[str, str]:
    return {
        str(e["element_id"]): str(e.get("content") or "")
        for e in (card.get("body") or {}).get("elements") or []
        if e.get("element_id")
    }


class FakeCardKit:
    def __init__(self) -> None:
        self.cards: dict[str, FakeCard] = {}
        self._ids = itertools.count(7355372766134157313)
        self._lock = threading.Lock()

    def card(self, card_id: str) -> FakeCard:
        return self.cards[card_id]

    def install(self, app: FastAPI, authorised: Any) -> None:
        kit = self

        @app.post("/open-apis/cardkit/v1/cards")
        async def create(request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            if body.get("type") != "card_json":
                return _error(10002, "type must be card_json")
            card, error = _parse_card(body.get("data"))
            if error is not None:
                return error
            assert card is not None
            with kit._lock:
                card_id = str(next(kit._ids))
                kit.cards[card_id] = FakeCard(
                    card_id,
                    card,
                    streaming=bool((card.get("config") or {}).get("streaming_mode")),
                    shown=_shown(card),
                )
            return {"code": 0, "msg": "success", "data": {"card_id": card_id}}

        def begin(card_id: str, body: dict[str, Any]) -> tuple[FakeCard | None, Any]:
            """Checks every card op shares; (card, None) to go on, (None, answer) to stop."""
            card = kit.cards.get(card_id)
            if card is None:
                return None, _error(200740, "card not found")
            uuid = str(body.get("uuid") or "")
            if uuid and uuid in card.uuids:
                return None, {"code": 0, "msg": "success", "data": {}}
            sequence = body.get("sequence")
            if not isinstance(sequence, int) or sequence <= card.last_sequence:
                card.sequence_errors += 1
                return None, _error(300317, "sequence number compare failed")
            now = time.monotonic()
            card.op_times = [t for t in card.op_times if now - t < 1.0]
            if len(card.op_times) >= OPS_PER_S:
                card.rate_limited += 1
                return None, _error(RATE_LIMITED, "card operation frequency limit", 429)
            card.op_times.append(now)
            card.last_sequence = sequence
            if uuid:
                card.uuids.add(uuid)
            return card, None

        @app.put("/open-apis/cardkit/v1/cards/{card_id}/elements/{element_id}/content")
        async def content(card_id: str, element_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            with kit._lock:
                card, answer = begin(card_id, body)
                if card is None:
                    return answer
                elements = {
                    e.get("element_id"): e for e in (card.card.get("body") or {})["elements"]
                }
                element = elements.get(element_id)
                if element is None or element.get("tag") not in ("markdown", "plain_text"):
                    return _error(BAD_ELEMENT, "element not found or not text")
                if not card.streaming:
                    return _error(NOT_STREAMING, "card is not in streaming mode")
                text = str(body.get("content") or "")
                element["content"] = text
                card.shown[element_id] = text
                card.history.append(
                    {"op": "content", "element_id": element_id, "content": text, "at": time.time()}
                )
            return {"code": 0, "msg": "success", "data": {}}

        @app.put("/open-apis/cardkit/v1/cards/{card_id}")
        async def replace(card_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            new = body.get("card") or {}
            parsed, error = _parse_card(new.get("data"))
            if error is not None:
                return error
            assert parsed is not None
            with kit._lock:
                card, answer = begin(card_id, body)
                if card is None:
                    return answer
                card.card = parsed
                card.streaming = bool((parsed.get("config") or {}).get("streaming_mode"))
                card.shown = _shown(parsed)
                card.history.append({"op": "replace", "shown": dict(card.shown)})
            return {"code": 0, "msg": "success", "data": {}}

        @app.patch("/open-apis/cardkit/v1/cards/{card_id}/settings")
        async def settings(card_id: str, request: Request) -> Any:
            if (denied := authorised(request)) is not None:
                return denied
            body = request.state.recorded.json or {}
            try:
                value = json.loads(body.get("settings") or "")
            except ValueError:
                return _error(10002, "settings must be a JSON string")
            with kit._lock:
                card, answer = begin(card_id, body)
                if card is None:
                    return answer
                config = value.get("config") or {}
                if "streaming_mode" in config:
                    card.streaming = bool(config["streaming_mode"])
                card.history.append({"op": "settings", "settings": value})
            return {"code": 0, "msg": "success", "data": {}}
