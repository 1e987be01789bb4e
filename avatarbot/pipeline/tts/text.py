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

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FULLWIDTH_ALNUM = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")


def check_text(text: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Return the cleaned text, or raise InvalidInput when it is empty or too long.

    Control characters become spaces (a NUL would end the C string early) and fullwidth
    letters/digits become ASCII (else the Mandarin voice spells "Ｈｅｌｌｏ" letter by letter)."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    text = _CONTROL.sub(" ", text)
    text = _FULLWIDTH_ALNUM.sub(lambda m: chr(ord(m.group()) - 0xFEE0), text)
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
    if _CYRILLIC.match(ch):
        return "ru"
    if _HANGUL.match(ch):
        return "ko"
    return None  # digits, spaces, punctuation: they follow their neighbours


def detect_language(text: str) -> str:
    """The main language: 'cmn' when the text has any Han character, else the first run's."""
    if _HAN.search(text):
        return "cmn"
    for ch in text:
        lang = _char_language(ch)
        if lang is not None:
            return lang
    return "en"


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
