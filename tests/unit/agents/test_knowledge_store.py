"""The knowledge index on SQLite (FTS5) and a real PostgreSQL (full text): Chinese and English
are found in their language, replacing re-indexes, deleting removes the passages."""

from __future__ import annotations

import asyncio

import pytest

from avatarbot.agents.knowledge.extract import UnsupportedDocument
from avatarbot.agents.knowledge.store import KnowledgeBase
from avatarbot.config import KnowledgeSettings
from avatarbot.errors import TooLarge
from avatarbot.storage import migrate
from avatarbot.storage.db import Database
from avatarbot.storage.models import Agent, KnowledgeChunk
from tests.helpers.documents import EN_HANDBOOK, ZH_HANDBOOK, docx_bytes, pdf_bytes


async def _agent(db: Database, name: str) -> str:
    async with db.session() as session:
        row = Agent(name=name, capabilities=["knowledge"])
        session.add(row)
        await session.commit()
        return row.id


async def _chunk_count(db: Database) -> int:
    from sqlalchemy import func, select

    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(KnowledgeChunk)) or 0)


async def test_index_search_replace_delete(any_database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, any_database_url)
    db = Database(any_database_url)
    kb = KnowledgeBase(db, KnowledgeSettings(chunk_chars=120, chunk_overlap=30))
    try:
        owner, other = await _agent(db, "hr"), await _agent(db, "sales")
        en, replaced = await kb.add_document(
            agent_id=owner, filename="handbook.txt", data=EN_HANDBOOK.encode()
        )
        assert not replaced and en.kind == "txt" and en.chunk_count >= 3
        zh, _ = await kb.add_document(
            agent_id=owner, filename="员工手册.docx", data=docx_bytes(ZH_HANDBOOK.split("\n\n"))
        )
        await kb.add_document(
            agent_id=other, filename="other.txt", data=b"Annual leave for sales: ten days."
        )

        hits = await kb.search(agent_id=owner, query="how many days of annual leave?")
        assert hits and hits[0].document == "handbook.txt"
        assert "twenty-five days" in hits[0].text and hits[0].cite.startswith("handbook.txt #")
        assert all(h.document != "other.txt" for h in hits)  # another agent's documents
        hits = await kb.search(agent_id=owner, query="年假")
        assert hits and hits[0].document == "员工手册.docx" and "十五天带薪年假" in hits[0].text
        hits = await kb.search(agent_id=owner, query="报销")
        assert hits and "三十天内提交发票" in hits[0].text
        # English stems match: "reimbursing" finds "reimbursed".
        assert (await kb.search(agent_id=owner, query="reimbursing"))[0].document == "handbook.txt"
        assert await kb.search(agent_id=owner, query="volcano") == []

        # Same file name again: re-indexed, old passages gone, same document id.
        with pytest.raises(UnsupportedDocument, match="unsupported document type"):
            await kb.add_document(agent_id=owner, filename="handbook.exe", data=b"MZ")
        pdf, _ = await kb.add_document(
            agent_id=owner, filename="rules.pdf", data=pdf_bytes(["Parking is in lot B."])
        )
        assert (await kb.search(agent_id=owner, query="parking"))[0].document == "rules.pdf"
        await kb.delete_document(agent_id=owner, document_id=pdf.id)
        again, replaced = await kb.add_document(
            agent_id=owner, filename="handbook.txt", data=b"Annual leave is now thirty days."
        )
        assert replaced and again.id == en.id and again.chunk_count == 1
        hits = await kb.search(agent_id=owner, query="annual leave")
        assert [h.text for h in hits] == ["Annual leave is now thirty days."]

        before = await _chunk_count(db)
        assert await kb.delete_document(agent_id=other, document_id=zh.id) is False
        assert await kb.delete_document(agent_id=owner, document_id=zh.id) is True
        assert await kb.search(agent_id=owner, query="年假") == []
        assert await _chunk_count(db) == before - zh.chunk_count
        assert [d.filename for d in await kb.list_documents(agent_id=owner)] == ["handbook.txt"]
    finally:
        await db.dispose()


async def test_agent_quota_and_chunk_cap(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    limits = KnowledgeSettings(max_agent_mb=1, max_chunks_per_document=3, chunk_chars=100)
    kb = KnowledgeBase(db, limits)
    try:
        agent = await _agent(db, "hr")
        big = ("word " * 120_000).encode()  # 600 KB
        with pytest.raises(TooLarge, match="passages"):
            await kb.add_document(agent_id=agent, filename="long.txt", data=big)
        kb.settings = KnowledgeSettings(max_agent_mb=1)
        await kb.add_document(agent_id=agent, filename="a.txt", data=big)
        with pytest.raises(TooLarge, match="knowledge base is full"):
            await kb.add_document(agent_id=agent, filename="b.txt", data=big)
        # Replacing a.txt does not count its old size twice.
        await kb.add_document(agent_id=agent, filename="a.txt", data=big)
        assert [d.filename for d in await kb.list_documents(agent_id=agent)] == ["a.txt"]
    finally:
        await db.dispose()


@pytest.mark.slow
def test_bench_knowledge_prints_and_saves_latencies(tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    out = subprocess.run(
        [sys.executable, "-m", "avatarbot", "bench", "knowledge", "--chunks", "120",
         "--queries", "40", "--out-dir", str(tmp_path / "results")],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(repo)}, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "p50 ms" in out.stdout and "p99 ms" in out.stdout and "goal p99 < 20 ms" in out.stdout
    [saved] = list((tmp_path / "results").glob("knowledge-*.json"))
    result = json.loads(saved.read_text())
    assert result["meta"]["chunks"] >= 120 and result["meta"]["database"] == "sqlite"
    assert [r["language"] for r in result["rows"]] == ["en", "zh"]
    assert all(r["queries"] == 20 and r["hit_rate"] > 0.8 for r in result["rows"])
