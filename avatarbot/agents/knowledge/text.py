"""Pure text helpers: overlapping chunks, search terms (words + CJK bigrams) and snippets.

Chinese has no spaces, so a word tokenizer sees a whole sentence as one token. Both databases
instead index `terms`: Latin words as they are (the database stems them) and every pair of
neighbouring CJK characters ("年假政策" -> "年假 假政 政策"). A two-character query word such as
"年假" is then an exact term, which a trigram index could not match.
"""

from __future__ import annotations

import re
import unicodedata

# CJK ideographs, kana and hangul: scripts written without spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_BREAKS = ("\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ")
# Words that only shape a question; dropping them keeps "what does X say" from matching all.
_STOPWORDS = (
    "a an and are about as at be by can could do does did for from how i in is it me my of on "
    "or our say says said tell the this that to us was we what when where which who why will "
    "with you your handbook manual document documents docs guide knowledge base "
    "关于 怎么 什么 一下 里面 手册 文档 资料 知识 识库 请问 如何 是否 哪些 规定 说明 的是"
)
QUERY_STOPWORDS = frozenset(_STOPWORDS.split())
MAX_QUERY_TERMS = 32


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def search_terms(text: str) -> list[str]:
    """Index terms of a text, in order: words, and bigrams of CJK runs (a lone CJK char too)."""
    terms: list[str] = []
    for token in _TOKEN.findall(normalize(text)):
        if _CJK_RUN.match(token):
            if len(token) == 1:
                terms.append(token)
            else:
                terms.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            terms.append(token)
    return terms


def query_terms(query: str) -> list[str]:
    """Distinct, meaningful terms of a question (stop words dropped unless nothing else is left)."""
    terms = list(dict.fromkeys(search_terms(query)))
    kept = [t for t in terms if t not in QUERY_STOPWORDS]
    return (kept or terms)[:MAX_QUERY_TERMS]


def chunk_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Split into passages of at most `size` characters; each starts `overlap` characters
    before the previous one ended, and ends at a paragraph or sentence break when one is near."""
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text).strip()
    if not text:
        return []
    size = max(size, 50)
    overlap = min(max(overlap, 0), size // 2)
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            end = _break_before(text, start, end)
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        # Begin the overlap at a word start rather than in the middle of one.
        space = text.find(" ", start, end)
        if 0 <= space < end and space - start < 20 and not _CJK_RUN.match(text[start]):
            start = space + 1
    return chunks


def _break_before(text: str, start: int, end: int) -> int:
    """The best cut in text[start:end]: the latest strong break in its second half."""
    half = start + (end - start) // 2
    for mark in _BREAKS:
        cut = text.rfind(mark, half, end)
        if cut != -1:
            return cut + len(mark)
    return end


def snippet(text: str, terms: list[str], *, width: int = 300) -> str:
    """About `width` characters of a passage around its first query term."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    lowered = normalize(flat)
    hits = [i for t in terms if (i := lowered.find(t)) != -1]
    first = min(hits) if hits else 0
    start = max(0, min(first - width // 3, len(flat) - width))
    piece = flat[start : start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(flat) else "")
