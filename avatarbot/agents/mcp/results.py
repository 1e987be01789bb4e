"""What an MCP tool call gives back to a brain: its text, and its images for models that see."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass
class McpToolResult:
    """Text parts joined (structured content as JSON when there is no text) plus images."""

    text: str
    images: list[tuple[str, str]] = field(default_factory=list)  # (mime type, base64 data)
    skipped: list[str] = field(default_factory=list)  # what could not be passed on, and why

    def for_model(self) -> str:
        notes = [*self.skipped]
        if self.images:
            notes.append(f"{len(self.images)} image(s) attached")
        return "\n".join([self.text, *(f"[{n}]" for n in notes)]).strip() or "(no output)"

    def image_urls(self) -> list[str]:
        return [f"data:{mime};base64,{data}" for mime, data in self.images]

    def __str__(self) -> str:
        return self.for_model()


def tool_result(result: Any) -> McpToolResult:
    """Convert an mcp CallToolResult (already validated by the SDK) into McpToolResult."""
    texts: list[str] = []
    images: list[tuple[str, str]] = []
    skipped: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            reason = _image_problem(block.mimeType, block.data, len(images))
            if reason:
                skipped.append(f"image not passed on: {reason}")
            else:
                images.append((block.mimeType, block.data))
        elif kind == "resource":
            resource = block.resource
            if getattr(resource, "text", None) is not None:
                texts.append(resource.text)
            else:
                skipped.append(f"binary resource {resource.uri} not passed on")
        elif kind == "resource_link":
            texts.append(f"(resource: {block.uri})")
        else:
            skipped.append(f"{kind or 'unknown'} content not passed on")
    if not texts and result.structuredContent is not None:
        texts.append(json.dumps(result.structuredContent, ensure_ascii=False, default=str))
    return McpToolResult("\n".join(texts), images, skipped)


def error_text(result: Any) -> str:
    """The message of a result the server flagged isError."""
    texts = [b.text for b in result.content or [] if getattr(b, "type", "") == "text"]
    return " ".join(texts).strip()[:1000] or "the tool reported an error"


def _image_problem(mime: str, data: str, count: int) -> str:
    if mime not in IMAGE_TYPES:
        return f"type {mime!r} is not one of {', '.join(IMAGE_TYPES)}"
    if count >= MAX_IMAGES:
        return f"more than {MAX_IMAGES} images"
    if len(data) * 3 // 4 > MAX_IMAGE_BYTES:
        return f"larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "not valid base64"
    return ""
