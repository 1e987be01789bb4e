"""KnowledgeBase: an agent's documents and passages in the database, and search over them.

SQLite: an FTS5 table `knowledge_fts(agent, terms)` (porter + unicode61 tokenizer) whose rowid
is the chunk id, ranked by bm25. It is a virtual table the ORM models cannot describe, so it is
created here on first use (not by the migration) and re-synced with knowledge_chunks once per
process. PostgreSQL: a tsvector column `search_vector` = to_tsvector('english', terms), with a
GIN index, matched by to_tsquery(...) and ranked by ts_rank.
Both index the same `terms` column (words + CJK bigrams, see text.py), so Chinese is found the
same way on both. Writes happen in one transaction: an upload is indexed completely or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.agents.knowledge import sqlite_reader
from avatarbot.agents.knowledge.extract import document_kind, extract_text
from avatarbot.agents.knowledge.text import chunk_text, query_terms, search_terms, snippet
from avatarbot.config import KnowledgeSettings
from avatarbot.errors import Conflict, InvalidInput, TooLarge
from avatarbot.services import Services
from avatarbot.storage.db import Database
from avatarbot.storage.models import KnowledgeChunk, KnowledgeDocument

logger = logging.getLogger(__name__)

MB = 1024 * 1024
MAX_RESULTS = 20
_FTS_CREATE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_fts USING fts5("
    "agent UNINDEXED, terms, tokenize = 'porter unicode61 remove_diacritics 2')"
)
_FTS_SYNC = (
    "DELETE FROM knowledge_fts WHERE rowid NOT IN (SELECT id FROM knowledge_chunks)",
    "INSERT INTO knowledge_fts(rowid, agent, terms) SELECT id, agent_id, terms "
    "FROM knowledge_chunks WHERE id NOT IN (SELECT rowid FROM knowledge_fts)",
)
# The best rowids first (FTS5 ranks only its own rows), then their passages and documents.
_SQLITE_SEARCH = (
    "SELECT c.position, c.content, d.id, d.filename, hit.rank FROM ("
    "SELECT rowid AS id, bm25(knowledge_fts) AS rank FROM knowledge_fts "
    "WHERE knowledge_fts MATCH :match AND agent = :agent ORDER BY rank LIMIT :limit) AS hit "
    "JOIN knowledge_chunks c ON c.id = hit.id "
    "JOIN knowledge_documents d ON d.id = c.document_id ORDER BY hit.rank"
)
_PG_SEARCH = text(
    "SELECT c.position, c.content, d.id, d.filename, "
    "ts_rank(c.search_vector, to_tsquery('english', :tsquery)) AS rank "
    "FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id "
    "WHERE c.agent_id = :agent AND c.search_vector @@ to_tsquery('english', :tsquery) "
    "ORDER BY rank DESC, c.id LIMIT :limit"
)
# The vector is computed once, at upload: to_tsvector() per row at query time (or an UPDATE
# after the insert, which leaves dead rows) made a search over 1 000 passages take 300 ms.
_PG_INSERT = text(
    "INSERT INTO knowledge_chunks (document_id, agent_id, position, content, terms, search_vector) "
    "VALUES (:doc, :agent, :position, :content, :terms, to_tsvector('english', :terms))"
)
# Databases whose FTS table exists and is in sync (per process).
_ready: weakref.WeakSet[Database] = weakref.WeakSet()


@dataclass
class DocumentInfo:
    id: str
    filename: str
    kind: str
    size_bytes: int
    chars: int
    chunk_count: int
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, row: KnowledgeDocument) -> DocumentInfo:
        return cls(
            row.id,
            row.filename,
            row.kind,
            row.size_bytes,
            row.chars,
            row.chunk_count,
            row.created_at,
            row.updated_at,
        )


@dataclass
class Passage:
    document_id: str
    document: str  # the file name, as users know it
    position: int  # 0-based; shown to people as "passage position + 1"
    text: str
    score: float

    @property
    def cite(self) -> str:
        return f"{self.document} #{self.position + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "document_id": self.document_id,
            "passage": self.position + 1,
            "cite": self.cite,
            "text": self.text,
            "score": round(self.score, 4),
        }


def clean_filename(filename: str) -> str:
    """The base name only (no folders from the client), printable, at most 255 characters."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    if not name or name in (".", ".."):
        raise InvalidInput("the upload has no file name")
    if len(name) > 255:
        stem, suffix = name[: 255 - 10], PurePath(name).suffix[:10]
        name = stem + suffix
    return name


def knowledge_base(services: Services) -> KnowledgeBase:
    return KnowledgeBase(services.db, services.settings.knowledge)


class KnowledgeBase:
    def __init__(self, db: Database, settings: KnowledgeSettings) -> None:
        self.db = db
        self.settings = settings

    # -- writing ----------------------------------------------------------------------------
    async def add_document(
        self, *, agent_id: str, filename: str, data: bytes
    ) -> tuple[DocumentInfo, bool]:
        """Index a document (replacing the agent's one of the same name); (info, replaced)."""
        filename = clean_filename(filename)
        kind = document_kind(filename)
        if len(data) > self.settings.max_document_mb * MB:
            raise TooLarge(f"document too large (limit {self.settings.max_document_mb} MB)")
        body = await asyncio.to_thread(extract_text, kind, data)
        chunks = chunk_text(
            body, size=self.settings.chunk_chars, overlap=self.settings.chunk_overlap
        )
        if len(chunks) > self.settings.max_chunks_per_document:
            raise TooLarge(
                f"document too long: {len(chunks)} passages "
                f"(limit {self.settings.max_chunks_per_document})"
            )
        await self._ensure_index()
        async with self.db.session() as session:
            await self._check_agent_quota(session, agent_id, filename, len(data))
            row = (
                await session.scalars(
                    select(KnowledgeDocument).where(
                        KnowledgeDocument.agent_id == agent_id,
                        KnowledgeDocument.filename == filename,
                    )
                )
            ).first()
            replaced = row is not None
            if row is None:
                row = KnowledgeDocument(agent_id=agent_id, filename=filename)
                session.add(row)
            else:
                await self._drop_chunks(session, row.id)
            row.kind = kind
            row.size_bytes = len(data)
            row.chars = len(body)
            row.chunk_count = len(chunks)
            row.sha256 = hashlib.sha256(data).hexdigest()
            try:
                await session.flush()
                await self._insert_chunks(session, row, chunks)
                await session.commit()
            except IntegrityError:  # the same name uploaded twice at once, or the agent deleted
                await session.rollback()
                raise Conflict(
                    f"{filename!r} changed meanwhile (uploaded twice?); try again"
                ) from None
            await session.refresh(row)
            info = DocumentInfo.of(row)
        if not self._sqlite:
            await self._analyze()
        return info, replaced

    async def delete_document(self, *, agent_id: str, document_id: str) -> bool:
        await self._ensure_index()
        async with self.db.session() as session:
            row = await session.get(KnowledgeDocument, document_id)
            if row is None or row.agent_id != agent_id:
                return False
            await self._drop_chunks(session, row.id)
            await session.delete(row)
            await session.commit()
            return True

    async def _check_agent_quota(
        self, session: AsyncSession, agent_id: str, filename: str, size: int
    ) -> None:
        others = await session.scalar(
            select(func.coalesce(func.sum(KnowledgeDocument.size_bytes), 0)).where(
                KnowledgeDocument.agent_id == agent_id, KnowledgeDocument.filename != filename
            )
        )
        if int(others or 0) + size > self.settings.max_agent_mb * MB:
            raise TooLarge(
                f"the agent's knowledge base is full (limit {self.settings.max_agent_mb} MB): "
                "delete documents first"
            )

    async def _insert_chunks(
        self, session: AsyncSession, row: KnowledgeDocument, chunks: list[str]
    ) -> None:
        values = [
            {
                "doc": row.id,
                "agent": row.agent_id,
                "position": i,
                "content": chunk,
                "terms": " ".join(search_terms(chunk)),
            }
            for i, chunk in enumerate(chunks)
        ]
        if not values:
            return
        if not self._sqlite:
            await session.execute(_PG_INSERT, values)
            return
        rows = [
            KnowledgeChunk(
                document_id=v["doc"],
                agent_id=v["agent"],
                position=v["position"],
                content=v["content"],
                terms=v["terms"],
            )
            for v in values
        ]
        session.add_all(rows)
        await session.flush()  # assigns the ids the FTS rows need
        await session.execute(
            text("INSERT INTO knowledge_fts(rowid, agent, terms) VALUES (:id, :agent, :terms)"),
            [{"id": r.id, "agent": r.agent_id, "terms": r.terms} for r in rows],
        )

    async def _drop_chunks(self, session: AsyncSession, document_id: str) -> None:
        if self._sqlite:
            await session.execute(
                text(
                    "DELETE FROM knowledge_fts WHERE rowid IN "
                    "(SELECT id FROM knowledge_chunks WHERE document_id = :doc)"
                ),
                {"doc": document_id},
            )
        await session.execute(
            delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document_id)
        )

    # -- reading ----------------------------------------------------------------------------
    async def list_documents(self, *, agent_id: str) -> list[DocumentInfo]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(KnowledgeDocument)
                .where(KnowledgeDocument.agent_id == agent_id)
                .order_by(KnowledgeDocument.filename)
            )
            return [DocumentInfo.of(r) for r in rows.all()]

    async def search(
        self, *, agent_id: str, query: str, limit: int = 5, width: int = 400
    ) -> list[Passage]:
        """The best passages for a query, best first (empty when nothing matches)."""
        terms = query_terms(query)
        if not terms:
            return []
        limit = max(1, min(int(limit), MAX_RESULTS))
        await self._ensure_index()
        if self._sqlite:
            # Terms are word characters only (text.py), so quoting them is enough.
            alternatives = " OR ".join('"' + t + '"' for t in terms)
            params = {"match": f"terms : ({alternatives})", "agent": agent_id, "limit": limit}
            found = await self._sqlite_rows(params)
            rows = [(p, c, d, f, -float(r)) for p, c, d, f, r in found]
        else:
            params = {"tsquery": " | ".join(f"'{t}'" for t in terms), "agent": agent_id}
            async with self.db.session() as session:
                result = await session.execute(_PG_SEARCH, {**params, "limit": limit})
                rows = [(p, c, d, f, float(r)) for p, c, d, f, r in result.all()]
        return [
            Passage(
                document_id=d, document=f, position=p, text=snippet(c, terms, width=width), score=s
            )
            for p, c, d, f, s in rows
        ]

    async def _analyze(self) -> None:
        """Fresh planner statistics, so PostgreSQL picks the GIN index over the agent index."""
        try:
            async with self.db.session() as session:
                await session.execute(text("ANALYZE knowledge_chunks"))
                await session.commit()
        except Exception:  # statistics are an optimisation; autovacuum catches up anyway
            logger.warning("ANALYZE knowledge_chunks failed", exc_info=True)

    # -- the SQLite index -------------------------------------------------------------------
    async def _sqlite_rows(self, params: dict[str, Any]) -> list[Any]:
        path = sqlite_reader.database_file(self.db.url)
        if path is not None:
            return await asyncio.to_thread(sqlite_reader.query, path, _SQLITE_SEARCH, params)
        async with self.db.session() as session:
            return list((await session.execute(text(_SQLITE_SEARCH), params)).all())

    @property
    def _sqlite(self) -> bool:
        return self.db.dialect == "sqlite"

    async def _ensure_index(self) -> None:
        if not self._sqlite or self.db in _ready:
            return
        async with self.db.session() as session:
            await session.execute(text(_FTS_CREATE))
            # Chunks removed by a cascade (agent deleted) or written by another tool: re-sync.
            for statement in _FTS_SYNC:
                await session.execute(text(statement))
            await session.commit()
        _ready.add(self.db)
