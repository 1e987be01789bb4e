"""A hand-written stdio MCP server (no SDK) whose tool list is partly malformed.

It answers initialize, tools/list (one good tool, three broken ones) and tools/call for the good
tool; enough protocol for the client, and full control over what goes on the wire.
"""

from __future__ import annotations

import json
import sys

TOOLS = [
    {
        "name": "echo",
        "description": "Echo the text back.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {"name": "stringy", "description": "schema is a string", "inputSchema": "not a schema"},
    {"name": "props", "inputSchema": {"type": "object", "properties": 5}},
    {"name": "badtype", "inputSchema": {"type": "object", "properties": {"x": {"type": 12}}}},
]


def answer(request_id: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    message = json.loads(line)
    method, request_id = message.get("method"), message.get("id")
    if request_id is None:
        continue  # notifications
    if method == "initialize":
        answer(
            request_id,
            {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0.0.1"},
            },
        )
    elif method == "tools/list":
        answer(request_id, {"tools": TOOLS})
    elif method == "tools/call":
        text = message["params"].get("arguments", {}).get("text", "")
        answer(request_id, {"content": [{"type": "text", "text": f"echo: {text}"}]})
    else:
        error = {"code": -32601, "message": f"unknown method {method}"}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}) + "\n")
        sys.stdout.flush()
