"""The LLM brain: any OpenAI-compatible chat-completions server, streaming, with tool calls.

One message runs a loop: ask the model (streaming tokens out), run the tools it calls, feed the
results back, until it answers in text or the step limit (settings.llm.max_tool_steps) is hit.
Timeouts and retries (429/5xx/connection errors, with backoff) are the SDK's, configured here.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from avatarbot.agents.brains.base import BrainContext, BrainResult, EventSink
from avatarbot.agents.brains.rules import stream_text
from avatarbot.agents.tools.toolbox import ToolOutcome
from avatarbot.config import LLMSettings
from avatarbot.errors import ExternalServiceError

logger = logging.getLogger(__name__)
TOOL_IMAGES_NOTE = "(images returned by the tools above)"

SUMMARY_INSTRUCTION = (
    "Summarise the conversation below in at most five sentences for your own memory: keep "
    "names, facts, decisions and open requests. Write in the conversation's language."
)


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class LLMBrain:
    name = "llm"

    def __init__(self, settings: LLMSettings, *, stream: bool = True, max_retries: int = 2) -> None:
        self.settings = settings
        self.stream = stream
        self.max_retries = max_retries

    def _client(self) -> Any:
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient  # lazy: keeps imports fast

        return AsyncOpenAI(
            base_url=self.settings.base_url,
            # Local servers (llama.cpp, Ollama) accept any key; the SDK insists on one.
            api_key=self.settings.api_key.get_secret_value() or "not-needed",
            timeout=self.settings.timeout_s,
            max_retries=self.max_retries,
            http_client=DefaultAsyncHttpxClient(verify=_tls_context()),
        )

    async def respond(self, ctx: BrainContext) -> BrainResult:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": _system_prompt(ctx)},
            *ctx.history,
            {"role": "user", "content": _user_content(ctx)},
        ]
        tools = ctx.toolbox.llm_schemas()
        limit = max(1, self.settings.max_tool_steps)
        texts: list[str] = []
        async with self._client() as client:
            for step in range(1, limit + 1):
                try:
                    text, calls = await self._complete(
                        client, messages, tools, ctx.emit, separate=bool(texts)
                    )
                except ExternalServiceError:
                    if not _drop_images(messages):
                        raise
                    # A text-only model refuses image parts: go on with the text alone.
                    logger.info("the model refused image input; retrying with the text alone")
                    text, calls = await self._complete(
                        client, messages, tools, ctx.emit, separate=bool(texts)
                    )
                if text:
                    texts.append(text)
                if not calls:
                    return BrainResult(text="\n\n".join(texts), steps=step)
                messages.append(
                    {
                        "role": "assistant",
                        "content": text,  # "" rather than null: some local servers reject null
                        "tool_calls": [
                            {
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments or "{}"},
                            }
                            for c in calls
                        ],
                    }
                )
                images: list[dict[str, Any]] = []
                for call in calls:
                    outcome = await self._run_tool(ctx, call)
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": outcome.for_model()}
                    )
                    images.extend(_image_parts(outcome))
                if images:
                    # Tool messages carry text only; images the tools returned follow as a
                    # user message, the way OpenAI-compatible servers accept them.
                    text_part = {"type": "text", "text": TOOL_IMAGES_NOTE}
                    messages.append({"role": "user", "content": [text_part, *images]})
        logger.info("agent %s: tool loop stopped at the limit of %d steps", ctx.agent.name, limit)
        note = _limit_note(ctx, limit)
        await stream_text(ctx, ("\n\n" if texts else "") + note)
        return BrainResult(text="\n\n".join([*texts, note]), steps=limit, stopped_at_limit=True)

    async def _run_tool(self, ctx: BrainContext, call: _ToolCall) -> ToolOutcome:
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError:
            return ToolOutcome(call.name, ok=False, error="the tool arguments were not valid JSON")
        if not isinstance(arguments, dict):
            return ToolOutcome(
                call.name, ok=False, error="the tool arguments must be a JSON object"
            )
        return await ctx.toolbox.call(call.name, arguments)

    async def _complete(
        self,
        client: Any,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        emit: EventSink,
        *,
        separate: bool = False,
    ) -> tuple[str, list[_ToolCall]]:
        kwargs: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        with _translated_errors(self.settings):
            if not self.stream:
                response = await client.chat.completions.create(**kwargs)
                message = response.choices[0].message
                text = message.content or ""
                if text:
                    await emit({"type": "token", "text": ("\n\n" if separate else "") + text})
                calls = [
                    _ToolCall(c.id, c.function.name, c.function.arguments or "")
                    for c in (message.tool_calls or [])
                ]
                return text, calls
            stream = await client.chat.completions.create(**kwargs, stream=True)
            parts: list[str] = []
            slots: dict[int, _ToolCall] = {}
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    if separate and not parts:
                        await emit({"type": "token", "text": "\n\n"})
                    parts.append(delta.content)
                    await emit({"type": "token", "text": delta.content})
                for piece in delta.tool_calls or []:
                    slot = slots.setdefault(piece.index, _ToolCall())
                    if piece.id:
                        slot.id = piece.id
                    if piece.function is not None:
                        slot.name += piece.function.name or ""
                        slot.arguments += piece.function.arguments or ""
            calls = [slots[i] for i in sorted(slots) if slots[i].name]
            for n, call in enumerate(calls):
                call.id = call.id or f"call_{n}"
            return "".join(parts), calls

    async def summarize(self, previous_summary: str, messages: list[dict[str, str]]) -> str | None:
        transcript = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        if previous_summary:
            transcript = f"(earlier summary) {previous_summary}\n{transcript}"
        try:
            async with self._client() as client:
                with _translated_errors(self.settings):
                    response = await client.chat.completions.create(
                        model=self.settings.model,
                        messages=[
                            {"role": "system", "content": SUMMARY_INSTRUCTION},
                            {"role": "user", "content": transcript},
                        ],
                    )
        except ExternalServiceError as exc:
            logger.warning("memory summary failed, dropping old turns instead: %s", exc.message)
            return None
        return (response.choices[0].message.content or "").strip() or None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle took 60-250 ms of CPU per
    message (a new client each time), most of what a chat added before the first token."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _translated_errors:
    """Turn SDK errors into ExternalServiceError with a safe message (no keys, no bodies)."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None:
            return False
        import openai

        if isinstance(exc, openai.APITimeoutError):
            raise ExternalServiceError(
                f"the language model did not answer within {self.settings.timeout_s:g} s"
            ) from None
        if isinstance(exc, openai.APIStatusError):
            raise ExternalServiceError(
                f"the language model server answered HTTP {exc.status_code}"
            ) from None
        if isinstance(exc, openai.APIConnectionError):
            raise ExternalServiceError("cannot reach the language model server") from None
        if isinstance(exc, openai.OpenAIError):
            raise ExternalServiceError(
                f"the language model call failed ({type(exc).__name__})"
            ) from None
        return False


def _drop_images(messages: list[dict[str, Any]]) -> bool:
    """For a text-only model: drop the tools' image messages and keep only the text of the
    user's own photo message (the question must survive); True when something changed."""
    kept: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] != "user" or not isinstance(message["content"], list):
            kept.append(message)
            continue
        texts = [p.get("text", "") for p in message["content"] if p.get("type") == "text"]
        if texts and texts[0] == TOOL_IMAGES_NOTE:
            continue
        kept.append({"role": "user", "content": "\n".join(texts)})
    changed = kept != messages
    messages[:] = kept
    return changed


def _image_parts(outcome: ToolOutcome) -> list[dict[str, Any]]:
    urls = getattr(outcome.result, "image_urls", None) if outcome.ok else None
    return [{"type": "image_url", "image_url": {"url": u}} for u in (urls() if urls else [])]


def _user_content(ctx: BrainContext) -> str | list[dict[str, Any]]:
    """Plain text, or text plus OpenAI image_url parts when the user sent photos."""
    if not ctx.images:
        return ctx.text
    parts: list[dict[str, Any]] = [{"type": "text", "text": ctx.text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in ctx.images]
    return parts


def _system_prompt(ctx: BrainContext) -> str:
    prompt = ctx.agent.prompt.strip() or "You are a helpful assistant."
    names = ", ".join(t.name for t in ctx.toolbox.allowed()) or "none"
    return (
        f"{prompt}\n\nYour name is {ctx.agent.name}. Tools you may call: {names}. "
        "Media made by tools is delivered to the user automatically; do not paste file paths."
    )


def _limit_note(ctx: BrainContext, limit: int) -> str:
    done = [o for o in ctx.toolbox.outcomes if o.ok]
    zh = ctx.language == "zh"
    names = ", ".join(dict.fromkeys(o.name for o in done)) or ("无" if zh else "none")
    if zh:
        return f"（已达到 {limit} 步工具调用上限，先停在这里。已完成：{names}。）"
    return f"(I stopped after the limit of {limit} tool steps. Completed: {names}.)"
