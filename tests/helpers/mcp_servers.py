"""Real MCP servers for the tests, written with the SDK's FastMCP.

`python tests/helpers/mcp_servers.py` serves the tools over stdio; `serve_http()` runs the same
tools over streamable HTTP (or SSE) with real uvicorn on 127.0.0.1, recording request headers.
"""

from __future__ import annotations

import base64
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.server.fastmcp import FastMCP, Image

STDIO_SCRIPT = Path(__file__).resolve()
RAW_SCRIPT = STDIO_SCRIPT.with_name("mcp_raw_server.py")


def tiny_png() -> bytes:
    """A valid 1x1 red PNG, built here so no file has to ship."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def build(name: str = "testtools", **settings: Any) -> FastMCP:
    server = FastMCP(name, **settings)

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    @server.tool()
    def whoami() -> str:
        """The server's process id."""
        return f"pid {os.getpid()}"

    @server.tool()
    async def hang(seconds: float = 3600.0) -> str:
        """Sleep for a long time (a tool that hangs)."""
        await anyio.sleep(seconds)
        return "woke up"

    @server.tool()
    def crash() -> str:
        """Exit the server process in the middle of the call."""
        os._exit(3)

    @server.tool()
    def chart() -> Image:
        """A tiny chart image."""
        return Image(data=tiny_png(), format="png")

    @server.tool()
    def fail(week: str) -> str:
        """Always fails."""
        raise ValueError(f"no data for week {week}")

    return server


@dataclass
class HttpMcp:
    url: str
    headers: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def serve_http(transport: str = "http") -> Iterator[HttpMcp]:
    """The tools over streamable HTTP (url .../mcp) or SSE (url .../sse)."""
    from tests.helpers.servers import start_uvicorn

    server = build("httptools")
    inner = server.sse_app() if transport == "sse" else server.streamable_http_app()
    seen: list[dict[str, str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await inner(scope, receive, send)

    running = start_uvicorn(app)
    try:
        path = "/sse" if transport == "sse" else "/mcp"
        yield HttpMcp(running.base_url + path, seen)
    finally:
        running.stop()


def image_b64() -> str:
    return base64.b64encode(tiny_png()).decode()


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "testtools").run("stdio")
