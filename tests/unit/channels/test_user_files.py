"""Files users send: text, markdown and PDF are read; other files get a clear refusal."""

from __future__ import annotations

import pytest

from avatarbot.bot.user_files import extract_text
from avatarbot.bot.user_media import image_suffix, wants_avatar
from avatarbot.errors import InvalidInput


def _pdf(text: str) -> bytes:
    """A one-page PDF with a text line (built by hand, with a correct xref table)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pdf_text_and_markdown_are_read() -> None:
    assert "Returns within thirty days" in extract_text(
        "policy.pdf", _pdf("Returns within thirty days")
    )
    assert extract_text("notes.md", "# 标题\n正文".encode()) == "# 标题\n正文"
    assert extract_text("legacy.txt", "中文".encode("gb18030")) == "中文"


def test_other_and_broken_files_are_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="text, markdown and PDF"):
        extract_text("archive.zip", b"PK\x03\x04")
    with pytest.raises(InvalidInput, match="not a PDF I can read"):
        extract_text("broken.pdf", b"%PDF-1.4 garbage")


def test_photo_words_and_image_bytes() -> None:
    assert (
        wants_avatar("/avatar") and wants_avatar("用这张照片") and wants_avatar("Use this photo!")
    )
    assert not wants_avatar("/avatars are cool") and not wants_avatar("hello")
    assert image_suffix(b"\xff\xd8\xff\xe0") == ".jpg" and image_suffix(b"%PDF") is None
