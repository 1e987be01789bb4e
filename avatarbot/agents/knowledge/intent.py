"""The offline rule brain's knowledge questions and how it quotes the passages it finds.

"what does the handbook say about X", "search the docs for X", "/kb X",
"手册里关于X怎么说", "员工手册中对X有什么规定", "查一下知识库 X" -> search_knowledge(query=X).
"""

from __future__ import annotations

import re
from typing import Any

_F = re.IGNORECASE | re.DOTALL
_EN_SOURCE = (
    r"(?:the\s+|our\s+|my\s+|your\s+|this\s+|that\s+)?(?:[\w-]+\s+){0,2}?"
    r"(?:handbook|manual|guide|guidebook|docs|documents?|documentation|knowledge\s*base|kb|"
    r"wiki|faq|policy|policies|rules|notes|files?|[\w.-]+\.(?:pdf|docx|md|txt))"
)
_ZH_SOURCE = r"(?:[\u4e00-\u9fff]{0,4}?(?:手册|文档|资料|知识库|制度|规章|指南|说明书|文件|规定))"
_PATTERNS = [
    re.compile(r"^\s*/(?:kb|knowledge|知识库)\s+(?P<q>.+)$", _F),
    re.compile(
        rf"\bwhat\s+(?:does|do|did|is)\s+{_EN_SOURCE}\s+(?:say|says|said|tell\s+us|state|mention|"
        rf"have\s+to\s+say|write)\s+(?:about|on|regarding|concerning|for)\s+(?P<q>.+)",
        _F,
    ),
    re.compile(
        rf"\b(?:what|how)\s+(?:is|are)\s+(?P<q>.+?)\s+(?:according\s+to|in)\s+{_EN_SOURCE}\s*[?.!]*$",
        _F,
    ),
    re.compile(
        rf"\b(?:search|check|look\s+(?:up|in|through)|find\s+in)\s+{_EN_SOURCE}\s+"
        rf"(?:for|about|on)\s+(?P<q>.+)",
        _F,
    ),
    re.compile(rf"\blook\s+up\s+(?P<q>.+?)\s+in\s+{_EN_SOURCE}\s*[?.!]*$", _F),
    re.compile(rf"\baccording\s+to\s+{_EN_SOURCE}\s*,\s*(?P<q>.+)", _F),
    re.compile(
        rf"{_ZH_SOURCE}(?:里面|里|中|上|当中)?(?:关于|对于|对|有关)?(?P<q>.+?)(?:的|是)?"
        r"(?:怎么说|怎么讲|如何说|说了什么|说什么|写了什么|怎么规定|是怎么规定的|如何规定|"
        r"有什么规定|有哪些规定|的规定是什么|规定是什么|是什么|有什么|是怎样的)[的吗呢啊？?。!！\s]*$",
        _F,
    ),
    re.compile(
        rf"{_ZH_SOURCE}(?:里面|里|中|上)?(?:是)?(?:怎么说|怎么讲|怎么规定|如何规定)(?:的)?"
        r"[：:\s，,]*(?:关于)?(?P<q>.+)",
        _F,
    ),
    re.compile(
        rf"(?:查一下|查查|查询|搜索|搜一下|检索|查找|找一下|看看)(?:一下)?{_ZH_SOURCE}"
        r"(?:里|中|里面)?(?:的|关于|有关)*[：:\s，,]*(?P<q>.+)",
        _F,
    ),
    re.compile(
        rf"(?:在|从){_ZH_SOURCE}(?:里|中|里面)(?:查一下|查查|查询|搜索|搜一下|找找?|查)"
        r"(?:一下)?(?:关于|有关)?[：:\s，,]*(?P<q>.+)",
        _F,
    ),
    re.compile(rf"(?:根据|按照){_ZH_SOURCE}[，,\s]*(?P<q>.+)", _F),
]
_TRIM = "\"'“”‘’「」『』《》 \t\n?？.。!！,，:：的"


def match_knowledge_question(text: str) -> str | None:
    """The topic X of a knowledge question, or None when the text is not one."""
    stripped = text.lstrip()
    if stripped.startswith("/") and not re.match(r"/(?:kb|knowledge|知识库)\s", stripped, _F):
        return None  # another command (/video 手册里…怎么说 is a video to make)
    for pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            topic = match.group("q").strip().strip(_TRIM).strip()
            topic = re.sub(r"(?:的规定|的内容|的政策|的要求)$", "", topic)
            if topic:
                return topic
    return None


def render_knowledge(result: dict[str, Any], zh: bool, *, limit: int = 3) -> str:
    """Quote the best passages with their source: document name and passage number."""
    query = str(result.get("query") or "")
    passages = list(result.get("results") or [])[:limit]
    if not passages:
        return (
            f"知识库里没有找到关于“{query}”的内容。"
            if zh
            else f'I found nothing about "{query}" in the knowledge base.'
        )
    lines = [f"知识库中关于“{query}”的内容：" if zh else f'What the documents say about "{query}":']
    for n, p in enumerate(passages, 1):
        source = (
            f"《{p['document']}》第 {p['passage']} 段"
            if zh
            else f"{p['document']}, passage {p['passage']}"
        )
        lines.append(f"{n}. {source}：“{p['text']}”" if zh else f'{n}. {source}: "{p["text"]}"')
    return "\n".join(lines)
