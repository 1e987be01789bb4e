"""`avatarbot bench webhook`: how long the platform waits for its 200 with durable intake.

Side by side on loopback: the floor (a bare FastAPI app doing one SQLite insert per request)
and avatarbot's Feishu webhook (decrypt, verify, parse, store the inbox row, answer, then
handle the event in the background). Then a burst of concurrent events while renders run.
Events are group messages without an @-mention: stored and then ignored, so no reply
leaves the machine and only the intake is measured.
"""

# No `from __future__ import annotations`: FastAPI must resolve the inner route's `Request`.

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer

TOKEN, KEY = "bench-token", "bench-encrypt-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """uvicorn in a process of its own, as in production: the bench client (and, for the
    floor, the bot's renders) never compete with it for one interpreter's GIL."""

    def __init__(self, kind: str, root: Path) -> None:
        self.port = _free_port()
        self.root = root
        self.cmd = [sys.executable, "-m", "avatarbot.bot.bench", kind, str(root), str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.cmd, cwd=self.root)  # cwd: no stray .env is read
        deadline = time.monotonic() + 120
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return f"http://127.0.0.1:{self.port}"
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the bench server ({self.cmd[3]}) did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _serve(kind: str, root: Path, port: int) -> None:
    """The child process of `_Server`: the floor app or avatarbot, on 127.0.0.1:port."""
    import uvicorn

    app = floor_app(root / "floor.db") if kind == "floor" else bot_app(root)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def bot_app(root: Path) -> Any:
    """avatarbot with the Feishu channel, on a fresh SQLite database under root."""
    from avatarbot.app import create_app
    from avatarbot.config import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=root / "data",
        database_url=f"sqlite+aiosqlite:///{root / 'avatarbot.db'}",
        log_level="WARNING",
        auth={"secret_key": "bench-secret-key-0123456789abcdef0123456789"},
        feishu={
            "app_id": "cli_bench",
            "app_secret": "bench",
            "verification_token": TOKEN,
            "encrypt_key": KEY,
            "base_url": "http://127.0.0.1:9",  # nothing is sent; bot identity just fails
        },
    )
    return create_app(settings)


def floor_app(db_path: Path) -> Any:
    """A bare FastAPI app that does one SQLite insert per request: the cost of any durable ack."""
    from fastapi import FastAPI, Request
    from sqlalchemy import text

    from avatarbot.storage.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, body TEXT)")
            )
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, Any]:
        body = await request.body()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO inbox (body) VALUES (:b)"), {"b": body.decode()})
        return {}

    return app


def _event(index: int, prefix: str) -> tuple[bytes, dict[str, str]]:
    from avatarbot.integrations.feishu.crypto import encrypt, signature

    payload = {
        "schema": "2.0",
        "header": {
            "event_id": f"{prefix}-{index}",
            "event_type": "im.message.receive_v1",
            "token": TOKEN,
        },
        "event": {
            "sender": {"sender_id": {"open_id": f"ou_bench_{index % 7}"}, "sender_type": "user"},
            "message": {
                "message_id": f"om_{prefix}_{index}",
                "chat_id": "oc_bench_group",
                "chat_type": "group",  # no @-mention: stored, then ignored (nothing sent)
                "message_type": "text",
                "content": json.dumps({"text": f"hello {index}"}),
            },
        },
    }
    raw = json.dumps({"encrypt": encrypt(KEY, json.dumps(payload))}).encode()
    timestamp, nonce = str(int(time.time())), f"n{index}"
    return raw, {
        "Content-Type": "application/json",
        "X-Lark-Request-Timestamp": timestamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature(timestamp, nonce, KEY, raw),
    }


async def _measure(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> list[float]:
    import asyncio  # here: every `avatarbot` command imports this module

    import httpx

    latencies: list[float] = []
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def one(raw: bytes, headers: dict[str, str]) -> None:
            async with limit:
                started = time.perf_counter()
                response = await client.post(url, content=raw, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")

        await asyncio.gather(*(one(raw, headers) for raw, headers in bodies))
    return latencies


def _stats(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
    }


def bench_webhook(
    requests: int = typer.Option(300, help="Sequential events per side."),
    burst: int = typer.Option(50, help="Concurrent events in the burst."),
    renders: int = typer.Option(2, help="Videos rendering during the burst."),
    out_dir: Path = typer.Option(Path("bench-results"), help="Where the JSON goes."),
) -> None:
    """Webhook ack latency: durable intake vs a bare one-insert FastAPI app, and a burst."""
    import asyncio  # here: every `avatarbot` command imports this module

    with tempfile.TemporaryDirectory(prefix="avatarbot-bench-") as tmp:
        root = Path(tmp)
        warm = [_event(i, "warm") for i in range(20)]
        durable_events = [_event(i, "seq") for i in range(requests)]
        floor_events = [_event(i, "floor") for i in range(requests)]
        burst_events = [_event(i, "burst") for i in range(burst)]
        with _Server("floor", root) as floor_url, _Server("bot", root) as bot_url:

            async def run() -> dict[str, Any]:
                await _measure(f"{floor_url}/hook", warm, 1)
                await _measure(f"{bot_url}/webhooks/feishu", warm, 1)
                # Interleaved halves, so drift of a shared machine hits both sides alike.
                floor, durable = [], []
                half = requests // 2
                for start, end in ((0, half), (half, requests)):  # an odd count keeps its last
                    floor += await _measure(f"{floor_url}/hook", floor_events[start:end], 1)
                    durable += await _measure(
                        f"{bot_url}/webhooks/feishu", durable_events[start:end], 1
                    )
                await _start_renders(bot_url, renders)
                bursty = await _measure(f"{bot_url}/webhooks/feishu", burst_events, burst)
                return {
                    "floor": _stats(floor),
                    "durable": _stats(durable),
                    f"burst_{burst}_during_{renders}_renders": _stats(bursty),
                }

            result = asyncio.run(run())
    floor, durable = result["floor"], result["durable"]
    result["ratio_p50"] = round(durable["p50_ms"] / floor["p50_ms"], 2)
    result["ratio_p99"] = round(durable["p99_ms"] / floor["p99_ms"], 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "webhook.json").write_text(json.dumps(result, indent=2))
    typer.echo(f"{'':<28}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for name, row in result.items():
        if isinstance(row, dict):
            typer.echo(f"{name:<28}{row['n']:>6}{row['p50_ms']:>10}{row['p99_ms']:>10}")
    typer.echo(f"durable / floor: p50 x{result['ratio_p50']}, p99 x{result['ratio_p99']}")
    typer.echo(f"written to {out_dir / 'webhook.json'}")


async def _start_renders(base_url: str, count: int) -> None:
    """Queue real renders through the API (they run in the server's job threads)."""
    if count <= 0:
        return
    import httpx

    api = f"{base_url}/api/v1"
    user = {"email": "bench@example.com", "password": "bench password 123"}
    async with httpx.AsyncClient(timeout=60) as client:
        await client.post(f"{api}/auth/register", json=user)
        login = await client.post(
            f"{api}/auth/login", data={"username": user["email"], "password": user["password"]}
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for index in range(count):
            answer = await client.post(
                f"{api}/digital-human/generate",
                headers=auth,
                json={"text": f"bench render number {index}, while the webhook takes a burst"},
            )
            if answer.status_code != 202:
                raise RuntimeError(f"render request failed: {answer.text}")


if __name__ == "__main__":  # the server processes of the bench
    _serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
