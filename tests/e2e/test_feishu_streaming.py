"""Feishu streaming answers (CardKit) and topic threads, end to end over real sockets.

The real avatarbot under uvicorn, the fake Feishu (with CardKit endpoints enforcing the
sequence rule and 10 ops/s per card) and a fake OpenAI-compatible LLM that streams slowly.
One app for the module (start-up is the expensive part); each test uses its own chat.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.fake_cardkit import FakeCard
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body
from tests.helpers.fake_llm import FakeLLM, fake_llm_thread, last_message
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

TOKEN = "verify-token-stream"
ENCRYPT_KEY = "encrypt-key-stream"
ANSWER = (
    "Streaming answers arrive word by word, so the user sees progress at once instead of "
    "waiting for the whole reply; the finished card holds exactly this text and nothing else."
)


def script(body: dict[str, Any], _n: int) -> dict[str, Any]:
    question = str(last_message(body).get("content") or "")
    if question.startswith("bench"):
        return {"content": "A short answer of about ten words for timing the first token."}
    if question.startswith("count"):  # how many turns the model sees: memory per conversation
        return {"content": f"turns={len(body['messages'])}"}
    return {"content": ANSWER}


@dataclass
class Env:
    fake: FakeFeishu
    llm: FakeLLM
    server: RunningServer
    db_path: Path

    def post(self, payload: dict[str, Any]) -> None:
        raw, headers = signed_body(payload, ENCRYPT_KEY)
        response = httpx.post(
            f"{self.server.base_url}/webhooks/feishu", content=raw, headers=headers, timeout=10
        )
        assert response.status_code == 200

    def ask(self, event_id: str, chat: str, text: str, **kwargs: Any) -> None:
        """Post a question and wait until the bot has finished with it."""
        self.post(message_event(event_id=event_id, chat_id=chat, text=text, token=TOKEN, **kwargs))
        wait_until(
            lambda: (
                self.query("SELECT status FROM processed_events WHERE event_id=?", event_id)
                == [("done",)]
            ),
            timeout=30,
        )
        # The answer is queued in the outbox when the event is done; wait until it is sent.
        wait_until(
            lambda: self.query("SELECT count(*) FROM deliveries WHERE status='pending'") == [(0,)],
            timeout=30,
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, args).fetchall()

    def to_chat(self, chat: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.sent() if m.get("receive_id") == chat]

    def card_of(self, message: dict[str, Any]) -> FakeCard:
        assert message["msg_type"] == "interactive" and message["content"]["type"] == "card"
        return self.fake.cardkit.card(message["content"]["data"]["card_id"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("feishu-stream")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
        with fake_llm_thread(script, chunk_delay_s=0.04) as llm:
            fake = FakeFeishu().start()
            db_path = tmp / "avatarbot.db"
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                env="test",
                data_dir=tmp / "data",
                database_url=f"sqlite+aiosqlite:///{db_path}",
                auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
                feishu={
                    "app_id": fake.app_id,
                    "app_secret": fake.app_secret,
                    "verification_token": TOKEN,
                    "encrypt_key": ENCRYPT_KEY,
                    "base_url": fake.base_url,
                },
                llm={"base_url": llm.base_url, "model": "fake-model", "timeout_s": 10},
            )
            server = start_uvicorn(create_app(settings))
            try:
                yield Env(fake, llm, server, db_path)
            finally:
                server.stop()
                fake.stop()


@pytest.fixture(autouse=True)
def _clean_failures(env: Env) -> Iterator[None]:
    env.fake.failures.clear()
    yield
    env.fake.failures.clear()


def test_answer_streams_into_one_card(env: Env) -> None:
    env.ask("ev-stream-1", "oc_stream", "explain streaming")
    sent = env.to_chat("oc_stream")
    assert len(sent) == 1, f"exactly one message, got {[m['msg_type'] for m in sent]}"
    card = env.card_of(sent[0])
    updates = card.content_updates("answer")
    assert len(set(updates)) >= 3, f"only {len(updates)} streamed updates"
    assert all(ANSWER.startswith(u) for u in updates), "each update is a prefix of the answer"
    assert card.text == ANSWER and card.ended
    assert card.history[-1]["op"] == "settings"
    assert card.sequence_errors == 0 and card.rate_limited == 0
    # Every card call carried a strictly increasing sequence.
    calls = env.fake.calls(f"/open-apis/cardkit/v1/cards/{card.card_id}")
    sequences = [c.json["sequence"] for c in calls]
    assert sequences == sorted(set(sequences)) and sequences[0] >= 1
    create = json.loads(env.fake.calls("/open-apis/cardkit/v1/cards", "POST")[-1].json["data"])
    assert create["config"]["streaming_mode"] is True


def test_cardkit_refused_gives_one_plain_message(env: Env) -> None:
    env.fake.failures.add(
        "/open-apis/cardkit/v1/cards",
        times=100,
        status=400,
        body={"code": 99991672, "msg": "Access denied. scope required: [cardkit:card:write]"},
    )
    env.ask("ev-refused-1", "oc_refused", "explain streaming")
    sent = env.to_chat("oc_refused")
    assert [m["msg_type"] for m in sent] == ["text"]
    assert sent[0]["content"]["text"] == ANSWER


def test_card_lost_mid_stream_still_delivers_the_answer_once(env: Env) -> None:
    # The first update on the card fails for good (card gone): stop, send it plainly.
    env.fake.failures.add(
        "/open-apis/cardkit/v1/cards/", times=1, status=400, body={"code": 200740, "msg": "gone"}
    )
    env.ask("ev-lost-1", "oc_lost", "explain streaming")
    sent = env.to_chat("oc_lost")
    assert [m["msg_type"] for m in sent] == ["interactive", "text"]
    assert sent[1]["content"]["text"] == ANSWER
    assert env.card_of(sent[0]).ended, "streaming is ended on the abandoned card"


def test_sequence_conflict_is_recovered(env: Env) -> None:
    env.fake.failures.add(
        "/open-apis/cardkit/v1/cards/",
        times=1,
        status=400,
        body={"code": 300317, "msg": "sequence number compare failed"},
    )
    env.ask("ev-seq-1", "oc_seq", "explain streaming")
    sent = env.to_chat("oc_seq")
    assert len(sent) == 1
    card = env.card_of(sent[0])
    assert card.text == ANSWER and card.ended


def test_thread_message_is_answered_in_the_thread_with_its_own_memory(env: Env) -> None:
    chat = "oc_topics"
    env.ask("ev-main-1", chat, "count main")
    env.ask("ev-thread-1", chat, "count thread", thread_id="omt_1", message_id="om_t_1")
    env.ask("ev-thread-2", chat, "count thread again", thread_id="omt_1", message_id="om_t_2")
    main = env.to_chat(chat)
    assert len(main) == 1 and env.card_of(main[0]).text == "turns=2"
    in_thread = [m for m in env.fake.sent() if m.get("reply_to") in ("om_t_1", "om_t_2")]
    assert [m["reply_to"] for m in in_thread] == ["om_t_1", "om_t_2"]
    assert all(m["reply_in_thread"] for m in in_thread)
    # The thread's first question sees no main-chat turns; its second sees the first.
    assert [env.card_of(m).text for m in in_thread] == ["turns=2", "turns=4"]


SAMPLES = 12  # enough for a p50 and a rough p99 without minutes of wall time


def _llm_ttft(llm: FakeLLM) -> float:
    """The LLM's own time to first token, as any client sees it (request -> first content)."""
    body = {
        "model": "fake-model",
        "stream": True,
        "messages": [{"role": "user", "content": "bench direct"}],
    }
    started = time.monotonic()
    first = 0.0
    with httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body, timeout=10) as r:
        for line in r.iter_lines():  # read to the end: a dropped stream is not what we time
            data = json.loads(line[6:]) if line.startswith("data: {") else None
            if not first and data and data["choices"][0]["delta"].get("content"):
                first = time.monotonic() - started
    assert first, "no content from the LLM"
    return first


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_benchmark_first_token_latency(env: Env) -> None:
    """Question -> first streamed token on the chat, side by side with the LLM's own TTFT."""
    env.llm.first_token_s = 0.15  # a model that thinks a little before it types
    llm_times: list[float] = []
    chat_times: list[float] = []
    to_llm: list[float] = []  # question -> request at the LLM (intake, routing, memory)
    to_chat: list[float] = []  # LLM's first word -> card on the chat (CardKit create + send)
    try:
        for n in range(-1, SAMPLES):  # round -1 warms up (first LLM call imports the SDK)
            ttft = _llm_ttft(env.llm)
            chat = f"oc_bench_{n}"
            event = message_event(
                event_id=f"ev-bench-{n}",
                chat_id=chat,
                text="bench question",
                token=TOKEN,
                sender_open_id=f"ou_bench_{n}",  # one user each: the per-user rate limit
            )
            started = time.monotonic()
            env.post(event)
            first = wait_until(lambda chat=chat: env.to_chat(chat), timeout=30)[0]
            wait_until(lambda chat=chat: env.card_of(env.to_chat(chat)[0]).ended, timeout=30)
            if n >= 0:
                llm_times.append(ttft)
                chat_times.append(first["at"] - started)
                to_llm.append(env.llm.arrivals[-1] - started)
                to_chat.append(first["at"] - env.llm.first_tokens[-1])
    finally:
        env.llm.first_token_s = 0.0
    added = [c - m for c, m in zip(chat_times, llm_times, strict=True)]
    rows = [("LLM time to first token", llm_times), ("question -> first token on chat", chat_times)]
    print(f"\nFeishu streaming, first token (ms), n={SAMPLES}")
    print(f"{'':34}{'p50':>8}{'p99':>8}")
    rows += [
        ("added by avatarbot", added),
        ("question -> request at the LLM", to_llm),
        ("LLM first word -> card on chat", to_chat),
    ]
    for label, values in rows:
        print(f"{label:34}{_pct(values, 0.5) * 1000:8.0f}{_pct(values, 0.99) * 1000:8.0f}")
    # Generous bound for a loaded CI box; it still fails if the answer waited for the whole
    # reply (that alone would add the model's full typing time).
    assert statistics.median(added) < 1.0
