"""The offline brain: Chinese and English intent rules that call the same tools an LLM would.

It is the default when no LLM is configured, needs no network and answers unknown text with
what it can do and how to configure an LLM (AVATARBOT_LLM__*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from avatarbot.agents.brains.base import BrainContext, BrainResult
from avatarbot.agents.brains.tool_command import run_tool_command
from avatarbot.agents.knowledge.intent import match_knowledge_question, render_knowledge
from avatarbot.agents.tools.toolbox import ToolOutcome

_QUOTES = "\"'“”‘’「」『』《》"
_F = re.IGNORECASE | re.DOTALL

_HELP = re.compile(
    r"^\s*(?:/help|/帮助|help|help me|\?|帮助|菜单|what can you do|what do you do|"
    r"你能做什么|你会做什么|你会什么|你可以做什么|能做什么|你能干什么)[\s?？!！。.]*$",
    _F,
)
_VIDEO = [
    re.compile(r"^\s*/video\s+(?P<text>.+)$", _F),
    re.compile(
        r"(?:生成|做|制作|来|录|拍|出)(?:一个|一段|一条|个|段|条)?(?:数字人)?视频"
        r"[\s，,：:。]*(?:说的是|说|内容是|内容为|内容|讲|念|播报)?[\s，,：:]*(?P<text>.+)",
        _F,
    ),
    re.compile(
        r"\b(?:make|create|generate|render|produce|record)\s+(?:me\s+|us\s+)?(?:a|an|one)?\s*"
        r"(?:short\s+|quick\s+)?(?:talking[- ]head\s+|avatar\s+)?video\s*"
        r"(?:saying|that says|which says|where you say|of you saying|with the text|reading|"
        r"with text|about|:)\s*[:,]?\s*(?P<text>.+)",
        _F,
    ),
]
_SPEAK = [
    re.compile(r"^\s*/voice\s+(?P<text>.+)$", _F),
    re.compile(
        r"\b(?:read|say|speak)\s+(?:this|it|the following|that)?\s*(?:out\s+)?(?:aloud|out loud)"
        r"\s*[:,]?\s*(?P<text>.+)",
        _F,
    ),
    re.compile(
        r"(?:朗读|念一下|念出来|读出来|读一下|用语音说|语音播报)[\s，,：:]*(?P<text>.+)", _F
    ),
]
_LIST_HUMANS = re.compile(
    r"(?:\b(?:list|show)\b.*\b(?:digital humans?|avatars|presenters)\b|"
    r"\b(?:which|what) (?:digital humans?|avatars|presenters)\b|"
    r"数字人列表|有哪些数字人|数字人有哪些|列出.*数字人|查看.*数字人|/humans)",
    _F,
)
_ZH_DAYS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 0, "天": 0}
_EN_DAYS = {
    "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5,
    "saturday": 6, "sunday": 0,
}  # fmt: skip
_REPEAT = re.compile(
    r"(每天|每日|每个工作日|工作日|每周(?P<zhday>[一二三四五六日天])|每星期(?P<zhday2>[一二三四五六日天])|"
    r"every ?day|daily|every weekday|on weekdays|weekdays|every (?P<enday>monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday))",
    _F,
)
_ZH_TIME = re.compile(
    r"(?P<part>早上|上午|中午|下午|晚上|凌晨)?\s*(?P<hour>\d{1,2})\s*(?:点|:|：|时)\s*"
    r"(?:(?P<half>半)|(?P<minute>\d{1,2})\s*分?)?",
)
_EN_TIME = re.compile(r"\bat\s+(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>am|pm)?", _F)
_LEADING_FILLER = re.compile(
    r"^[\s，,。:：]*(?:给我|帮我|请)?(?:发送|发|推送|send(?: me)?|post|push|生成|做)?[\s，,:：]*",
    _F,
)


@dataclass
class Intent:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


def detect_language(text: str) -> str:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def _clean(text: str) -> str:
    return text.strip().strip(_QUOTES).strip().strip(_QUOTES).strip()


def match_intent(text: str) -> Intent | None:
    """The tool a message asks for, or Intent('help'), or None when no rule matches."""
    if _HELP.match(text):
        return Intent("help")
    # "每天9点生成一个视频…" is a schedule whose output is a video, not a video now.
    if (schedule := parse_schedule(text)) is not None:
        return schedule
    if (topic := match_knowledge_question(text)) is not None:
        return Intent("search_knowledge", {"query": topic})
    for pattern in _VIDEO:
        if (m := pattern.search(text)) and _clean(m.group("text")):
            return Intent("make_video", {"text": _clean(m.group("text"))})
    for pattern in _SPEAK:
        if (m := pattern.search(text)) and _clean(m.group("text")):
            return Intent("speak", {"text": _clean(m.group("text"))})
    if _LIST_HUMANS.search(text):
        return Intent("list_digital_humans")
    return None


def parse_schedule(text: str) -> Intent | None:
    """Simple recurring requests: '每天早上9点发日报', 'every weekday at 9:30 send a summary'."""
    repeat = _REPEAT.search(text)
    if repeat is None:
        return None
    time_match = _ZH_TIME.search(text, repeat.end()) or _EN_TIME.search(text)
    if time_match is None:
        return None
    hour = int(time_match.group("hour"))
    groups = time_match.groupdict()
    minute = 30 if groups.get("half") else int(groups.get("minute") or 0)
    part, ampm = groups.get("part") or "", (groups.get("ampm") or "").lower()
    if (part in ("下午", "晚上") or ampm == "pm") and hour < 12:
        hour += 12
    if (part == "凌晨" or ampm == "am") and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    phrase = repeat.group(0).lower()
    zh_day = repeat.group("zhday") or repeat.group("zhday2")
    if zh_day:
        weekday = str(_ZH_DAYS[zh_day])
    elif repeat.group("enday"):
        weekday = str(_EN_DAYS[repeat.group("enday").lower()])
    elif "工作日" in phrase or "weekday" in phrase:
        weekday = "1-5"
    else:
        weekday = "*"
    rest = text[max(repeat.end(), time_match.end()) :]
    prompt = _clean(_LEADING_FILLER.sub("", rest, count=1)) or _clean(text)
    lowered = text.lower()
    output = "video" if ("视频" in text or "video" in lowered) else "text"
    if "markdown" in lowered:
        output = "markdown"
    return Intent(
        "schedule_report",
        {"cron": f"{minute} {hour} * * {weekday}", "prompt": prompt, "output": output},
    )


class RulesBrain:
    name = "rules"

    async def respond(self, ctx: BrainContext) -> BrainResult:
        if (direct := await run_tool_command(ctx)) is not None:  # "/tool <name> {json}"
            answer = direct if isinstance(direct, str) else _render(direct, ctx.language == "zh")
            await stream_text(ctx, answer)
            return BrainResult(text=answer, steps=1, meta={"intent": "tool"})
        intent = match_intent(ctx.text)
        if intent is not None and intent.tool in ctx.toolbox.blocked:
            intent = None
        zh = ctx.language == "zh"
        if intent is None and ctx.channel == "scheduler":
            # A scheduled report's prompt is its content when there is no LLM to write one.
            answer = ctx.text
        elif intent is None:
            answer = self.help_text(ctx, unknown=True)
        elif intent.tool == "help":
            answer = self.help_text(ctx)
        else:
            outcome = await ctx.toolbox.call(intent.tool, intent.arguments)
            answer = _render(outcome, zh)
        await stream_text(ctx, answer)
        return BrainResult(text=answer, steps=1, meta={"intent": intent.tool if intent else None})

    async def summarize(self, previous_summary: str, messages: list[dict[str, str]]) -> str | None:
        return None  # offline: old turns are simply dropped

    def help_text(self, ctx: BrainContext, *, unknown: bool = False) -> str:
        agent, zh = ctx.agent, ctx.language == "zh"
        lines: list[str] = []
        if unknown:
            lines.append(
                f"我是离线助手“{agent.name}”，只听得懂下面这些请求："
                if zh
                else f"I'm '{agent.name}', running offline; I understand these requests:"
            )
        else:
            lines.append(f"我是“{agent.name}”，可以：" if zh else f"I'm '{agent.name}'. I can:")
        if agent.can("video"):
            lines.append(
                "• 生成数字人视频：“生成一个视频说 大家好” 或 /video 文本"
                if zh
                else '• make a talking digital-human video: "make a video saying hello team" or '
                "/video <text>"
            )
        if agent.can("voice"):
            lines.append(
                "• 朗读文字：“朗读 今天的天气很好” 或 /voice 文本"
                if zh
                else '• read text aloud: "read this aloud: good morning" or /voice <text>'
            )
        lines.append(
            "• 查看数字人：“有哪些数字人”"
            if zh
            else '• list the digital humans: "list digital humans"'
        )
        if agent.can("schedule"):
            lines.append(
                "• 定时报告：“每天早上9点发日报”"
                if zh
                else '• schedule a report: "every day at 9am send the daily summary"'
            )
        if agent.can("knowledge"):
            lines.append(
                "• 查知识库：“手册里关于年假怎么说”"
                if zh
                else '• answer from uploaded documents: "what does the handbook say about leave"'
            )
        plugin_tools = [t for t in ctx.toolbox.allowed() if t.source.startswith("plugin")]
        if plugin_tools:
            names = ", ".join(t.name for t in plugin_tools[:8])
            lines.append(f"• 插件工具：{names}" if zh else f"• plugin tools: {names}")
        mcp_tools = [t.name for t in ctx.toolbox.allowed() if t.source.startswith("mcp:")]
        if mcp_tools:
            names = ", ".join(mcp_tools[:8])
            lines.append(
                f"• MCP 工具（/tool 工具名 {{JSON 参数}}）：{names}"
                if zh
                else f"• MCP tools (/tool <name> {{json}}): {names}"
            )
        if ctx.settings.llm.enabled is False:
            lines.append(
                "想自由对话？配置一个 OpenAI 兼容的大模型：设置 AVATARBOT_LLM__BASE_URL、"
                "AVATARBOT_LLM__MODEL 和 AVATARBOT_LLM__API_KEY。"
                if zh
                else "For free conversation, configure an OpenAI-compatible LLM: set "
                "AVATARBOT_LLM__BASE_URL, AVATARBOT_LLM__MODEL and AVATARBOT_LLM__API_KEY."
            )
        return "\n".join(lines)


def _render(outcome: ToolOutcome, zh: bool) -> str:
    if not outcome.ok:
        if outcome.refused:
            return outcome.error or ""
        return (
            f"抱歉，没能完成：{outcome.error}"
            if zh
            else f"Sorry, I couldn't do that: {outcome.error}"
        )
    result = outcome.result if isinstance(outcome.result, dict) else {}
    if outcome.name == "make_video":
        return (
            f"好的，正在生成视频（任务 {result['task_id']}），内容：“{result.get('text', '')}”。"
            "完成后会发给你。"
            if zh
            else f'OK, making a video saying "{result.get("text", "")}" '
            f"(task {result['task_id']}). I'll send it when it's ready."
        )
    if outcome.name == "speak":
        return (
            f"好的，正在生成语音（任务 {result['task_id']}）。"
            if zh
            else f"OK, making the audio (task {result['task_id']})."
        )
    if outcome.name == "list_digital_humans":
        humans = result.get("digital_humans", [])
        if not humans:
            return "还没有数字人。" if zh else "There are no digital humans yet."
        head = "可用的数字人：" if zh else "Available digital humans:"
        rows = [
            f"• {h['name']} ({h['id'][:8]}) — {h.get('description') or ''}".rstrip(" —")
            for h in humans
        ]
        return "\n".join([head, *rows])
    if outcome.name == "search_knowledge":
        return render_knowledge(result, zh)
    if outcome.name == "schedule_report":
        return (
            f"已创建定时任务（{result['cron']}，{result['timezone']}）：{result['name']}"
            if zh
            else f'Scheduled: "{result["name"]}" at cron {result["cron"]} ({result["timezone"]}).'
        )
    return outcome.for_model()


async def stream_text(ctx: BrainContext, text: str) -> None:
    """Emit a finished answer as token events, so every brain streams the same way."""
    for piece in re.findall(r"\S+\s*|\s+", text):
        await ctx.emit({"type": "token", "text": piece})
