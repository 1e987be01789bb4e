"""Text from outside (chats, WebSocket frames, API bodies) made safe before any processing.

JSON may carry lone UTF-16 surrogates ("\\ud800"): Python accepts them in a str, but they cannot
be encoded as UTF-8, so the first database write or HTTP call raised deep inside the pipeline.
Control characters are dropped too (tab and newline kept); the text is NFC-normalised.
"""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls and DEL, except tab and newline (carriage returns become newlines).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def normalize_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, controls removed, NFC applied."""
    if not text:
        return text
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        # Through UTF-16: a split pair ("\ud83d\ude00") is joined again, a lone half replaced.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROLS.sub("", text))
