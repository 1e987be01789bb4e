"""Text checks shared by every TTS backend: input limits, language detection, language runs.

Mixed Chinese/English text is split into runs so each run is spoken by a voice of its own
language (a Mandarin voice spelling out English words sounds wrong, and the other way round).
"""

from __future__ import annotations

import re

from avatarbot.errors import InvalidInput

MAX_TEXT_CHARS = 5000

# Language codes a caller may use, mapped to the espeak-style code we speak with.
LANGUAGE_ALIASES: dict[str, str] = {
    "zh": "cmn",
    "zh-cn": "cmn",
    "zh-hans": "cmn",
    "zh_cn": "cmn",
    "cmn": "cmn",
    "mandarin": "cmn",
    "chinese": "cmn",
    "en": "en",
    "en-us": "en",
    "en_us": "en",
    "english": "en",
}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")


def check_text(text: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Return the stripped text, or raise InvalidInput when it is empty or too long."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidInput("text is empty")
    if len(stripped) > max_chars:
        raise InvalidInput(
            f"text is too long: {len(stripped)} characters, the limit is {max_chars}"
        )
    return stripped


def normalize_language(language: str) -> str:
    """Map a caller's language code to 'cmn', 'en' or the given lower-cased code."""
    code = language.strip().lower()
    return LANGUAGE_ALIASES.get(code, code)


def _char_language(ch: str) -> str | None:
    if _HAN.match(ch):
        return "cmn"
    if _LATIN_LETTER.match(ch):
        return "en"
    return None  # digits, spaces, punctuation: they follow their neighbours


def detect_language(text: str) -> str:
    """'cmn' when the text contains any Han character, else 'en'."""
    return "cmn" if _HAN.search(text) else "en"


def split_language_runs(text: str) -> list[tuple[str, str]]:
    """Split text into consecutive (language, chunk) runs; neutral characters join the run before.

    "你好。Hello 2 you" -> [("cmn", "你好。"), ("en", "Hello 2 you")].
    """
    runs: list[list[str]] = []  # [language, chunk]
    pending = ""  # neutral characters seen before any language
    for ch in text:
        lang = _char_language(ch)
        if lang is None:
            if runs:
                runs[-1][1] += ch
            else:
                pending += ch
            continue
        if runs and runs[-1][0] == lang:
            runs[-1][1] += ch
        else:
            runs.append([lang, pending + ch])
            pending = ""
    if not runs:
        return [(detect_language(text), text)] if text.strip() else []
    return [(lang, chunk) for lang, chunk in runs if chunk.strip()]
