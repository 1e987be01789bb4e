"""Files users send: text, markdown, CSV, PDF and Word are read; other files get a clear refusal."""

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
    with pytest.raises(InvalidInput, match="text, markdown, CSV, PDF and Word"):
        extract_text("archive.zip", b"PK\x03\x04")
    with pytest.raises(InvalidInput, match=r"broken\.pdf: could not read the PDF"):
        extract_text("broken.pdf", b"%PDF-1.4 garbage")


def test_photo_words_and_image_bytes() -> None:
    assert (
        wants_avatar("/avatar") and wants_avatar("用这张照片") and wants_avatar("Use this photo!")
    )
    assert not wants_avatar("/avatars are cool") and not wants_avatar("hello")
    assert image_suffix(b"\xff\xd8\xff\xe0") == ".jpg" and image_suffix(b"%PDF") is None


def test_kb_words_and_the_last_file_of_a_conversation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import time
    from types import SimpleNamespace

    from avatarbot.bot import last_media
    from avatarbot.bot.chat_knowledge import wants_knowledge
    from avatarbot.bot.types import Channel, IncomingMessage

    def last_file(services, msg):  # type: ignore[no-untyped-def]
        path = last_media.last(services, msg, "file")
        return None if path is None else (path.name, path.read_bytes())

    assert (
        wants_knowledge("/kb")
        and wants_knowledge("加入知识库")
        and wants_knowledge("Add to knowledge")
    )
    assert not wants_knowledge("/kbd") and not wants_knowledge("knowledge is power")
    services = SimpleNamespace(settings=SimpleNamespace(data_dir=tmp_path))
    alice = IncomingMessage(channel=Channel.FEISHU, chat_id="oc_1", user_id="ou_a", text="")
    bob = IncomingMessage(channel=Channel.FEISHU, chat_id="oc_1", user_id="ou_b", text="")
    last_media.keep(services, alice, "file", "a.md", b"first")  # type: ignore[arg-type]
    last_media.keep(services, alice, "file", "b.md", b"second")  # type: ignore[arg-type]
    assert last_file(services, alice) == ("b.md", b"second")
    assert last_file(services, bob) is None
    assert last_media.last(services, alice, "photo") is None  # type: ignore[arg-type]
    [kept] = (tmp_path / "user_media" / "last_file").glob("*/*")
    old = time.time() - last_media.TTL_S - 5
    os.utime(kept, (old, old))
    assert last_file(services, alice) is None
    # A name from the platform is a name, never a path.
    path = last_media.keep(services, bob, "file", "../../evil.md", b"x")  # type: ignore[arg-type]
    assert path.name == "evil.md" and path.parent.parent.name == "last_file"


def test_word_and_csv_files_are_read_too() -> None:
    import io

    import docx

    document = docx.Document()
    document.add_paragraph("年假为十五天。")
    out = io.BytesIO()
    document.save(out)
    assert "十五天" in extract_text("policy.docx", out.getvalue())
    assert extract_text("sales.csv", b"region,amount\nnorth,12\n") == "region,amount\nnorth,12"
    with pytest.raises(InvalidInput, match=r"fake\.docx: .*not a \.docx"):
        extract_text("fake.docx", b"PK\x03\x04 not really a zip")
