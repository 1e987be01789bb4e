"""Chunking with overlap, search terms for Chinese and English, and the rule brain's questions."""

from __future__ import annotations

import itertools

import pytest

from avatarbot.agents.brains.rules import match_intent
from avatarbot.agents.knowledge.text import chunk_text, query_terms, search_terms, snippet


def test_chunks_overlap_and_cover_the_text() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(200))
    chunks = chunk_text(text, size=300, overlap=60)
    assert len(chunks) > 10 and all(len(c) <= 300 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert after[:20] in before  # each passage starts inside the previous one
    assert "Sentence number 0 " in chunks[0] and "Sentence number 199 " in chunks[-1]
    zh = "。".join(f"第{i}条规定员工应当遵守" for i in range(100))
    zh_chunks = chunk_text(zh, size=120, overlap=20)
    assert all(len(c) <= 120 for c in zh_chunks) and zh_chunks[0].endswith("。")
    assert chunk_text("  \n\n ", size=100, overlap=10) == []


def test_terms_are_words_and_cjk_bigrams() -> None:
    assert search_terms("Annual LEAVE: 年假政策") == ["annual", "leave", "年假", "假政", "政策"]
    assert search_terms("Ｅｍａｉｌ 的") == ["email", "的"]  # full width folded; lone CJK kept
    assert query_terms("what does the handbook say about annual leave?") == ["annual", "leave"]
    assert query_terms("手册里关于年假怎么说") == ["册里", "里关", "于年", "年假", "假怎", "么说"]
    assert query_terms("the") == ["the"]  # only stop words: keep them rather than nothing


def test_snippet_centres_on_the_hit() -> None:
    text = "filler " * 100 + "the parking lot is behind building B " + "filler " * 100
    piece = snippet(text, ["parking"], width=120)
    assert "parking lot" in piece and piece.startswith("…") and piece.endswith("…")
    assert len(piece) <= 122


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("what does the handbook say about annual leave?", "annual leave"),
        ("What do the docs say about expenses", "expenses"),
        ("what does handbook.pdf say about parking", "parking"),
        ("search the knowledge base for remote work", "remote work"),
        ("look up parking in the employee handbook", "parking"),
        ("/kb 年假", "年假"),
        ("手册里关于年假怎么说", "年假"),
        ("手册里关于年假怎么说？", "年假"),
        ("员工手册中对加班有什么规定？", "加班"),
        ("手册里怎么说年假", "年假"),
        ("查一下知识库 报销流程", "报销流程"),
        ("在手册里查一下年假", "年假"),
    ],
)
def test_knowledge_questions(text: str, topic: str) -> None:
    intent = match_intent(text)
    assert intent is not None and intent.tool == "search_knowledge"
    assert intent.arguments == {"query": topic}


@pytest.mark.parametrize(
    "text", ["/video 手册里关于年假怎么说", "what does john say about it", "生成一个视频说 大家好"]
)
def test_not_knowledge_questions(text: str) -> None:
    intent = match_intent(text)
    assert intent is None or intent.tool != "search_knowledge"
