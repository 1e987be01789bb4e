"""Real documents for knowledge-base tests: a text PDF written by hand, .docx via python-docx."""

from __future__ import annotations

import io
import zipfile

EN_HANDBOOK = (
    "Employee Handbook\n\n"
    "Annual leave. Every employee receives twenty-five days of paid annual leave per year. "
    "Leave requests go to your manager at least two weeks in advance.\n\n"
    "Remote work. Staff may work from home on Tuesdays and Thursdays after their probation.\n\n"
    "Expenses. Travel expenses are reimbursed within thirty days when receipts are attached."
)
ZH_HANDBOOK = (
    "员工手册\n\n"
    "年假制度：员工每年享有十五天带薪年假，请假需提前一周向直属主管申请。\n\n"
    "加班规定：工作日加班按一点五倍工资计算，周末加班可以调休。\n\n"
    "报销流程：差旅费用须在出差结束后三十天内提交发票报销。"
)


def pdf_bytes(lines: list[str]) -> bytes:
    """A valid one-page PDF showing the (ASCII) lines in Helvetica, with a correct xref."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def docx_bytes(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    """A plain zip (no OOXML parts): what a zip renamed to .docx looks like."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "just a zip")
    return out.getvalue()
