"""Text out of an uploaded document: .txt, .md, .pdf (pypdf) and .docx (python-docx).

Every way a file can be wrong (corrupt, encrypted, a zip renamed .docx, a zip bomb, an image-only
PDF, an unknown type) ends in a typed error with a short message: the API answers 4xx.
pypdf and python-docx are imported here, lazily, so `import avatarbot` stays fast.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from avatarbot.errors import InvalidInput, TooLarge

SUPPORTED_KINDS = ("txt", "md", "pdf", "docx")
_SUFFIX_KINDS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md"} | {
    ".pdf": "pdf",
    ".docx": "docx",
}
MAX_PDF_PAGES = 5000
# A .docx is a zip: refuse one whose parts would inflate past this (a zip bomb).
MAX_DOCX_UNZIPPED_BYTES = 300 * 1024 * 1024


class UnsupportedDocument(InvalidInput):
    """A file type the knowledge base does not read."""

    status_code = 415
    code = "unsupported_media_type"


def document_kind(filename: str) -> str:
    """'txt' | 'md' | 'pdf' | 'docx' from the file name; UnsupportedDocument otherwise."""
    kind = _SUFFIX_KINDS.get(PurePath(filename).suffix.lower())
    if kind is None:
        raise UnsupportedDocument(
            f"unsupported document type {PurePath(filename).suffix or '(none)'!r}: "
            "upload .txt, .md, .pdf or .docx"
        )
    return kind


# Read as text when users send them in a chat (the knowledge base indexes the kinds above).
PLAIN_SUFFIXES = (".csv", ".log", ".tsv", ".json", ".yaml", ".yml")


def read_file_text(filename: str, data: bytes) -> str:
    """The text of any file a user sends: the document kinds above plus plain-text ones (a PDF
    is known by its header whatever its name). InvalidInput says what is wrong."""
    suffix = PurePath(filename).suffix.lower()
    if data.lstrip()[:5].startswith(b"%PDF"):
        kind = "pdf"
    elif suffix in PLAIN_SUFFIXES or not suffix:
        kind = "txt"
    else:
        kind = document_kind(filename)
    return extract_text(kind, data)


def extract_text(kind: str, data: bytes) -> str:
    """The document's text (blocking: run it in a thread). Raises InvalidInput when unreadable."""
    if not data:
        raise InvalidInput("the uploaded file is empty")
    if kind in ("txt", "md"):
        text = _decode_text(data)
    elif kind == "pdf":
        text = _pdf_text(data)
    elif kind == "docx":
        text = _docx_text(data)
    else:
        raise UnsupportedDocument(f"unsupported document type {kind!r}")
    text = text.replace("\x00", "").strip()
    if not text:
        raise InvalidInput(
            "no text found in the document (a scanned PDF needs OCR before upload)"
            if kind == "pdf"
            else "no text found in the document"
        )
    return text


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise InvalidInput("this is not a text file (it contains binary data)")
    # UTF-8 first; GB18030 (a superset of GBK/GB2312) is what older Chinese documents use.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("could not decode the text file: save it as UTF-8")


def _pdf_text(data: bytes) -> str:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise InvalidInput("this is not a PDF file (no %PDF header)")
    # pypdf logs every repaired cross-reference at WARNING; a bad upload must not flood the log.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidInput("the PDF is password-protected: upload an unencrypted copy")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise TooLarge(f"the PDF has more than {MAX_PDF_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (InvalidInput, TooLarge):
        raise
    except RecursionError:
        raise InvalidInput("could not read the PDF: its structure is nested too deeply") from None
    except PyPdfError as exc:
        raise InvalidInput(
            f"could not read the PDF: it looks corrupt ({type(exc).__name__})"
        ) from None
    except Exception as exc:  # a broken PDF trips pypdf in many ways; still the caller's file
        raise InvalidInput(
            f"could not read the PDF: it looks corrupt ({type(exc).__name__})"
        ) from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _docx_text(data: bytes) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise InvalidInput("this is not a .docx file (not a valid zip/OOXML package)") from None
    if "word/document.xml" not in names or "[Content_Types].xml" not in names:
        raise InvalidInput("this is not a .docx file (a zip without word/document.xml)")
    if unzipped > MAX_DOCX_UNZIPPED_BYTES:
        raise TooLarge("the .docx unpacks to more than 300 MB")

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"could not read the .docx ({type(exc).__name__})") from None
    except Exception as exc:  # lxml syntax errors and friends: still the caller's file
        raise InvalidInput(
            f"could not read the .docx: it looks corrupt ({type(exc).__name__})"
        ) from None
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                parts.append(" | ".join(dict.fromkeys(cells)))
    return "\n\n".join(parts)
