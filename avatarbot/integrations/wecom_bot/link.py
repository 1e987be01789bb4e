"""The WeCom AI bot long connection: subscribe, heartbeat, reconnect, request/ack matching.

One socket per bot (a DB lease decides which replica holds it). Frames are JSON text:
`{"cmd", "headers": {"req_id"}, "body"}`; answers carry the same req_id and no cmd. Acks
of one req_id match only by order, so `request` keeps one frame in flight per req_id.
A frame whose ack was lost with the socket is sent again after the reconnect (stream
snapshots are idempotent; the upload session survives reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.wecom_bot.lease import Lease

logger = logging.getLogger(__name__)

CallbackSink = Callable[[dict[str, Any]], Awaitable[None]]
MAX_FRAME_BYTES = 4 * 1024 * 1024
CONNECT_TIMEOUT_S = 15.0
# Answered by other clients with a short retry (AstrBot: 6000; hermes-agent: 846601/2/9).
TRANSIENT_CODES = (6000, 846601, 846602, 846609)


class WecomBotError(ExternalServiceError):
    """WeCom answered a frame with a non-zero errcode."""

    def __init__(self, message: str, errcode: int = -1) -> None:
        super().__init__(message)
        self.errcode = errcode


class LinkDown(Exception):
    """The socket closed while a frame waited for its ack."""


def new_req_id(cmd: str) -> str:
    return f"{cmd}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


class Link:
    def __init__(
        self,
        *,
        url: str,
        bot_id: str,
        secret: str,
        on_callback: CallbackSink,
        lease: Lease | None = None,
        ping_interval_s: float = 30.0,
        backoff_max_s: float = 30.0,
        backoff_base_s: float = 1.0,
        ack_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.bot_id = bot_id
        self._secret = secret
        self.on_callback = on_callback
        self.lease = lease
        self.ping_interval_s = ping_interval_s
        self.backoff_max_s = backoff_max_s
        self.backoff_base_s = backoff_base_s
        self.ack_timeout_s = ack_timeout_s
        # stopped | waiting_lease | connecting | connected | backoff | replaced
        self.state = "stopped"
        self.connected_since: float | None = None
        self.last_frame_at: float | None = None
        self.reconnects = 0
        self.subscribes = 0
        self.last_error = ""
        self._up = asyncio.Event()
        self._ws: Any = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._req_locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._unanswered_pings = 0
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="wecom-bot-link")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for task in list(self._handlers):
            task.cancel()
        self._fail_pending()
        self.state = "stopped"
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await self.lease.release()

    def status(self) -> dict[str, Any]:
        now = time.time()
        info: dict[str, Any] = {"state": self.state, "restarts": self.reconnects}
        if self.connected_since is not None and self.state == "connected":
            info["connected_since"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.connected_since)
            )
            info["connected_for_s"] = round(now - self.connected_since, 1)
        if self.last_frame_at is not None:
            info["last_frame_age_s"] = round(now - self.last_frame_at, 1)
        if self.last_error:
            info["last_error"] = self.last_error
        return info

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self, timeout: float) -> None:
        if self.state == "replaced":  # it will not come back by itself: fail at once
            raise ExternalServiceError(
                "the WeCom AI bot link was replaced by another client subscribing this bot"
            )
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError as exc:
            raise ExternalServiceError(
                f"the WeCom AI bot link is {self.state} (waited {timeout:.0f}s)"
            ) from exc

    # --- requests --------------------------------------------------------------------

    async def request(
        self,
        cmd: str,
        body: dict[str, Any] | None = None,
        *,
        req_id: str = "",
        attempts: int = 3,
        up_timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Send one frame and return its answer; raises WecomBotError on a non-zero errcode."""
        req_id = req_id or new_req_id(cmd)
        frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
        if body is not None:
            frame["body"] = body
        text = json.dumps(frame, ensure_ascii=False)
        self._lock_users[req_id] = self._lock_users.get(req_id, 0) + 1
        lock = self._req_locks.setdefault(req_id, asyncio.Lock())
        try:
            async with lock:  # one frame in flight per req_id: acks match only by order
                for attempt in range(attempts):
                    answer = await self._send_until_acked(req_id, text, attempts, up_timeout_s)
                    if int(answer.get("errcode") or 0) not in TRANSIENT_CODES:
                        break
                    await asyncio.sleep(0.5 * (attempt + 1))  # "command conflict" and kin
        finally:
            self._lock_users[req_id] -= 1
            if self._lock_users[req_id] <= 0:
                self._lock_users.pop(req_id, None)
                self._req_locks.pop(req_id, None)
        errcode = int(answer.get("errcode") or 0)
        if errcode != 0:
            raise WecomBotError(
                f"WeCom AI bot refused {cmd} (errcode {errcode}: {answer.get('errmsg', '')})",
                errcode,
            )
        return answer

    async def _send_until_acked(
        self, req_id: str, text: str, attempts: int, up_timeout_s: float
    ) -> dict[str, Any]:
        last = ""
        for _ in range(attempts):
            await self.wait_up(up_timeout_s)
            try:
                return await self._exchange(self._ws, req_id, text)
            except (LinkDown, ConnectionError) as exc:
                last = f"link dropped ({type(exc).__name__})"  # resent after the reconnect
            except TimeoutError:
                last = f"no answer within {self.ack_timeout_s:.0f}s"
            except Exception as exc:  # aiohttp raises its own errors on a closing socket
                last = f"{type(exc).__name__}"
        raise ExternalServiceError(f"WeCom AI bot frame {req_id.split('_')[0]}: {last}")

    async def _exchange(self, ws: Any, req_id: str, text: str) -> dict[str, Any]:
        """Send one frame on this socket and wait for the answer with the same req_id."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            await ws.send_str(text)
            return await asyncio.wait_for(future, self.ack_timeout_s)
        finally:
            if self._pending.get(req_id) is future:
                self._pending.pop(req_id, None)

    # --- connection loop -------------------------------------------------------------

    async def _run(self) -> None:
        import aiohttp

        failures = 0
        async with aiohttp.ClientSession() as http:
            while not self._stopping:
                if self.lease is not None and not await self._try_lease():
                    self.state = "waiting_lease"
                    await asyncio.sleep(self.lease.ttl_s / 2)
                    continue
                self.state = "connecting"
                subscribed = False
                started = asyncio.get_running_loop().time()
                try:
                    # A black-holed handshake must not hang the loop: bounded like a frame.
                    ws = await asyncio.wait_for(
                        http.ws_connect(self.url, max_msg_size=MAX_FRAME_BYTES, autoping=True),
                        CONNECT_TIMEOUT_S,
                    )
                    async with ws:
                        subscribed = await self._session(ws)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    logger.warning("WeCom AI bot link failed: %s", self.last_error)
                finally:
                    self._up.clear()
                    self._ws = None
                    self._fail_pending()
                if self.state == "replaced" or self._stopping:
                    break
                # Only a session that lived resets the backoff: a server that accepts and
                # drops us at once must not be hammered every second.
                lived = asyncio.get_running_loop().time() - started > 2 * self.ping_interval_s
                failures = 0 if subscribed and lived else failures + 1
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**failures)
                self.state = "backoff"
                self.reconnects += 1
                logger.warning("WeCom AI bot link down; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)
            if self.state == "replaced":
                # Another client subscribed this bot: reconnecting would kick it, and it would
                # kick us back. Hold the lease so no replica of ours tries either.
                await self._hold_lease_forever()

    async def _try_lease(self) -> bool:
        assert self.lease is not None
        try:
            return await self.lease.acquire()
        except Exception as exc:  # the database is down: do not connect blind
            self.last_error = f"lease: {type(exc).__name__}"
            return False

    async def _hold_lease_forever(self) -> None:
        while self.lease is not None:
            await asyncio.sleep(self.lease.ttl_s / 3)
            await self._try_lease()

    async def _session(self, ws: Any) -> bool:
        """Subscribe, then read, ping and renew the lease until one of them stops."""
        reader = asyncio.create_task(self._read(ws), name="wecom-bot-read")
        req_id = new_req_id("aibot_subscribe")
        frame = {
            "cmd": "aibot_subscribe",
            "headers": {"req_id": req_id},
            "body": {"bot_id": self.bot_id, "secret": self._secret},
        }
        try:
            answer = await self._exchange(ws, req_id, json.dumps(frame))
        except BaseException:
            reader.cancel()
            raise
        self._ws = ws
        return await self._after_subscribe(ws, reader, answer)

    async def _after_subscribe(self, ws: Any, reader: asyncio.Task[None], answer: Any) -> bool:
        if int(answer.get("errcode") or 0) != 0:
            reader.cancel()
            self.last_error = f"subscribe refused (errcode {answer.get('errcode')})"
            logger.error("WeCom AI bot %s", self.last_error)
            return False
        self.subscribes += 1
        self.state = "connected"
        self.connected_since = time.time()
        self.last_error = ""
        self._unanswered_pings = 0
        self._up.set()
        logger.info("WeCom AI bot link up (bot %s)", self.bot_id)
        watchers = [
            reader,
            asyncio.create_task(self._ping(ws), name="wecom-bot-ping"),
        ]
        if self.lease is not None:
            watchers.append(asyncio.create_task(self._renew(), name="wecom-bot-lease"))
        try:
            await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._up.clear()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await ws.close()
        return True

    async def _read(self, ws: Any) -> None:
        import aiohttp

        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
                continue
            self.last_frame_at = time.time()
            try:
                frame = json.loads(message.data)
                if not isinstance(frame, dict):
                    raise ValueError("not an object")
            except ValueError:
                logger.warning(
                    "WeCom AI bot sent an unreadable frame (%d bytes)", len(message.data)
                )
                continue
            if self._dispatch(frame):
                return

    def _dispatch(self, frame: dict[str, Any]) -> bool:
        """Route one frame; True when the link must end (this bot was subscribed elsewhere)."""
        headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
        req_id = str(headers.get("req_id") or "")
        cmd = frame.get("cmd")
        if not cmd:  # an answer to one of ours
            if req_id.startswith("ping_"):
                self._unanswered_pings = 0
            future = self._pending.pop(req_id, None)
            if future is not None and not future.done():
                future.set_result(frame)
            return False
        body = frame.get("body") if isinstance(frame.get("body"), dict) else {}
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        kind = event.get("eventtype") or event.get("event_type")
        if cmd == "aibot_event_callback" and kind == "disconnected_event":
            self.state = "replaced"
            self.last_error = "replaced: another client subscribed this bot"
            logger.warning("WeCom AI bot link %s; not reconnecting", self.last_error)
            return True
        if cmd not in ("aibot_msg_callback", "aibot_event_callback"):
            logger.warning("WeCom AI bot sent an unknown cmd %r; ignored", str(cmd)[:40])
            return False
        task = asyncio.create_task(self._deliver(frame), name=f"wecom-bot-{req_id[:40]}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        return False

    async def _deliver(self, frame: dict[str, Any]) -> None:
        try:
            await self.on_callback(frame)
        except Exception:  # one bad callback must not take the link down
            logger.exception("handling a WeCom AI bot callback failed")

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            if self._unanswered_pings >= 2:
                self.last_error = "two pings unanswered: dead link"
                logger.warning("WeCom AI bot %s", self.last_error)
                return
            self._unanswered_pings += 1
            req_id = new_req_id("ping")
            try:
                await ws.send_str(json.dumps({"cmd": "ping", "headers": {"req_id": req_id}}))
            except Exception:
                return

    async def _renew(self) -> None:
        assert self.lease is not None
        while True:
            await asyncio.sleep(self.lease.ttl_s / 3)
            if not await self._try_lease():
                self.last_error = "lost the connection lease to another replica"
                logger.warning("WeCom AI bot %s", self.last_error)
                return

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(LinkDown())
                future.exception()  # retrieved: no "never retrieved" warning if nobody waits
