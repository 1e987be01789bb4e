"""One live connection to an MCP server (stdio, streamable HTTP or SSE), kept for the process.

The SDK's transports and session are anyio contexts that must be entered and left in one task,
so a background "owner" task holds them open; calls from any chat go through the session.
A pump between the transport and the session notices end of stream (a stdio server that exited
or was killed): the connection is then marked dead and the next call starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from avatarbot.agents.mcp.reasons import describe, left_out
from avatarbot.agents.mcp.results import McpToolResult, error_text, tool_result
from avatarbot.agents.mcp.schemas import MAX_PAGES, McpTool, RawToolList, check_tools
from avatarbot.agents.mcp.servers import McpServer, command_allowed
from avatarbot.config import McpSettings
from avatarbot.errors import ExternalServiceError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 10.0  # after a failed start, calls fail fast for this long instead of waiting
DRAIN_S = 2.0  # how long a dying connection waits for calls in flight to get their error


class McpUnavailable(ExternalServiceError):
    """The server could not be started or reached."""


class McpCallFailed(ExternalServiceError):
    """A tool call failed: timeout, crash, protocol or tool error. The model sees the message."""


class McpConnection:
    def __init__(
        self, server: McpServer, *, label: str, settings: McpSettings, log_dir: Path | None
    ) -> None:
        self.server = server
        self.label = label  # "<agent>/<server>": logs and /health, never secrets
        self.settings = settings
        self.log_dir = log_dir
        self.state = "idle"  # idle | connecting | connected | error | closed
        self.reason = ""
        self.tools: list[McpTool] = []
        self.tool_errors: list[str] = []
        self.left_out: dict[str, str] = {}  # tool name -> why it is not offered
        self.starts = 0
        self._session: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._dead = False
        self._closing = False
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_at = 0.0
        self._lock = asyncio.Lock()

    # -- state --------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return (
            self._session is not None
            and not self._dead
            and self._task is not None
            and not self._task.done()
            and self._loop is asyncio.get_running_loop()
        )

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.state,
            "transport": self.server.transport,
            "tools": len(self.tools),
            "starts": self.starts,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.tool_errors:
            out["errors"] = list(self.tool_errors)
        return out

    # -- starting -----------------------------------------------------------------------------
    async def ensure(self) -> Any:
        """The live session, starting (or restarting) the server when needed."""
        if self.alive:
            return self._session
        async with self._lock:
            if self.alive:
                return self._session
            if self.state == "error" and time.monotonic() < self._retry_at:
                raise McpUnavailable(self._message(self.reason))
            await self._start()
            return self._session

    async def _start(self) -> None:
        await self._stop_owner()
        self._wake, self._dead, self._closing = asyncio.Event(), False, False
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self.state, self.starts = "connecting", self.starts + 1
        self._task = asyncio.create_task(self._own(ready), name=f"mcp {self.label}")
        timeout = self.settings.connect_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except TimeoutError:
            self._failed(f"no answer within {timeout:g} s while starting")
            ready.cancel()  # nobody waits for it any more
            await self._stop_owner()
            raise McpUnavailable(self._message(self.reason)) from None
        except McpUnavailable:
            await self._stop_owner()
            raise
        logger.info(
            "MCP server %s connected (%s, %d tools)",
            self.label,
            self.server.transport,
            len(self.tools),
        )

    def _failed(self, reason: str) -> None:
        self.state, self.reason = "error", reason
        self._retry_at = time.monotonic() + RETRY_AFTER_S
        logger.warning("MCP server %s unavailable: %s", self.label, reason)

    def unavailable_message(self) -> str:
        return self._message(self.reason or self.state)

    def _message(self, reason: str) -> str:
        return f"the MCP server '{self.server.name}' is unavailable: {reason}"

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """Owner task: open transport and session, list tools, then hold them until woken."""
        from mcp import ClientSession
        from mcp.types import ClientRequest, ListToolsRequest, PaginatedRequestParams

        pump: asyncio.Task[None] | None = None
        try:
            async with self._transport() as streams:
                import anyio

                session_in, pumped = anyio.create_memory_object_stream[Any](0)
                pump = asyncio.create_task(self._pump(streams[0], session_in))
                async with ClientSession(pumped, streams[1]) as session:
                    await session.initialize()
                    raw: list[Any] = []
                    cursor: str | None = None
                    for _ in range(MAX_PAGES):
                        params = PaginatedRequestParams(cursor=cursor) if cursor else None
                        page = await session.send_request(
                            ClientRequest(ListToolsRequest(params=params)), RawToolList
                        )
                        raw.extend(page.tools)
                        cursor = page.nextCursor
                        if not cursor:
                            break
                    if ready.done():  # the start was given up (too slow): leave quietly
                        return
                    self.tools, self.tool_errors = check_tools(raw, self.server.name)
                    self.left_out = left_out(raw, self.tools, self.tool_errors)
                    for error in self.tool_errors:
                        logger.warning("MCP server %s: %s", self.label, error)
                    self._session, self.state, self.reason = session, "connected", ""
                    self._retry_at = 0.0  # only failed starts wait; a crash restarts at once
                    ready.set_result(None)
                    await self._wake.wait()
                    if self._dead:
                        await self._drain()
        except Exception as exc:
            reason = describe(exc, self.server)
            if not ready.done():
                self._failed(reason)
                ready.set_exception(McpUnavailable(self._message(reason)))
            elif not self._closing:
                self._dead = True
                self.state, self.reason = "error", f"connection lost: {reason}"
                logger.warning("MCP server %s: connection lost: %s", self.label, reason)
        finally:
            self._session = None
            if pump is not None:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
            if self._closing:
                self.state, self.reason = "closed", ""
            elif self._dead and self.state == "connected":
                self.state = "error"
                self.reason = "the server exited or was killed; it restarts on the next call"
                logger.warning("MCP server %s stopped; it restarts on the next call", self.label)
        if not ready.done():  # left without error or answer (cancelled while starting)
            ready.set_exception(McpUnavailable(self._message("start-up was interrupted")))

    async def _pump(self, source: Any, sink: Any) -> None:
        import anyio

        try:
            async with sink:
                async for item in source:
                    await sink.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        finally:
            if not self._closing:
                self._dead = True
            self._wake.set()

    async def _drain(self) -> None:
        """Let calls in flight receive their 'connection closed' error before tearing down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), DRAIN_S)

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        server = self.server
        if server.transport == "stdio":
            return self._stdio()
        if server.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(
                server.url or "",
                headers=dict(server.headers),
                timeout=self.settings.connect_timeout_s,
                sse_read_timeout=max(300.0, self.settings.call_timeout_s),
            )
        return self._streamable_http()

    @asynccontextmanager
    async def _streamable_http(self) -> AsyncIterator[Any]:
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx.Timeout(
            self.settings.connect_timeout_s, read=max(300.0, self.settings.call_timeout_s)
        )
        async with (
            httpx.AsyncClient(headers=dict(self.server.headers), timeout=timeout) as client,
            streamable_http_client(self.server.url or "", http_client=client) as streams,
        ):
            yield streams

    @asynccontextmanager
    async def _stdio(self) -> AsyncIterator[Any]:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command = self.server.command or ""
        # Checked again at start: the allowlist may have shrunk since the agent was saved.
        if not command_allowed(command, self.settings.allowed_command_list):
            raise PermissionError(
                f"the command {command!r} is not in AVATARBOT_MCP__ALLOWED_COMMANDS"
            )
        params = StdioServerParameters(
            command=command, args=list(self.server.args), env=dict(self.server.env) or None
        )
        # The server's stderr goes to its own file, never into our logs (it may echo secrets).
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"{self.label.replace('/', '-')}.stderr.log"
        else:
            path = Path(os.devnull)
        log = await asyncio.to_thread(path.open, "w", encoding="utf-8")
        try:
            async with stdio_client(params, errlog=log) as streams:
                yield streams
        finally:
            log.close()

    # -- calling ------------------------------------------------------------------------------
    async def call(self, tool: str, arguments: dict[str, Any]) -> McpToolResult:
        from mcp.shared.exceptions import McpError
        from mcp.types import CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest

        session = await self.ensure()
        timeout = self.settings.call_timeout_s
        name = f"{self.server.name}__{tool}"
        request = ClientRequest(
            CallToolRequest(params=CallToolRequestParams(name=tool, arguments=arguments))
        )
        self._inflight += 1
        self._idle.clear()
        try:
            # send_request, not session.call_tool: call_tool re-lists the tools (and fails on a
            # server with one malformed tool) to validate structured output we do not use.
            async with asyncio.timeout(timeout + 5):
                result = await session.send_request(
                    request, CallToolResult, request_read_timeout_seconds=timedelta(seconds=timeout)
                )
        except McpError as exc:
            raise McpCallFailed(self._call_error(name, exc.error.code, exc.error.message)) from None
        except TimeoutError:
            raise McpCallFailed(f"{name} did not answer within {timeout:g} s") from None
        except Exception as exc:
            import anyio

            if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError):
                self._mark_dead()
                raise McpCallFailed(
                    f"{name} failed: the connection to the MCP server was lost; "
                    "it restarts on the next call"
                ) from None
            logger.warning("MCP call %s failed: %s", name, type(exc).__name__)
            raise McpCallFailed(f"{name} failed: {describe(exc, self.server)}") from None
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()
        if result.isError:
            raise McpCallFailed(f"{name} reported an error: {error_text(result)}")
        return tool_result(result)

    def _call_error(self, name: str, code: int, message: str) -> str:
        from mcp.types import CONNECTION_CLOSED

        if code == CONNECTION_CLOSED:
            self._mark_dead()
            return (
                f"{name} failed: the MCP server stopped during the call (it exited, crashed or "
                "was killed); it restarts on the next call"
            )
        if code == 408:  # the SDK's request timeout
            return f"{name} did not answer within {self.settings.call_timeout_s:g} s"
        return f"{name} failed: the MCP server answered: {message[:500]}"

    def _mark_dead(self) -> None:
        if not self._closing:
            self._dead = True
            self._wake.set()

    # -- stopping -----------------------------------------------------------------------------
    async def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        self._wake.set()
        await self._stop_owner(timeout)
        self.state, self.reason = "closed", ""

    async def _stop_owner(self, timeout: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        if task.get_loop() is not asyncio.get_running_loop():
            task.cancel()  # from another event loop (a closed test loop): nothing to wait for
            return
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            logger.debug("MCP owner task of %s ended with an error", self.label, exc_info=True)
