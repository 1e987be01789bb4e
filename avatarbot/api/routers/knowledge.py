"""An agent's knowledge base: upload (txt, md, pdf, docx), list, search and delete documents.

The upload is read from the request stream with a cap, before any multipart parsing: a 200 MB
body is refused after ~20 MB (or at once from its Content-Length), never buffered or spooled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from avatarbot.agents.knowledge.store import MB, DocumentInfo, knowledge_base
from avatarbot.agents.profile import AgentProfile
from avatarbot.api.deps import CurrentUser, ServicesDep, SuperUser
from avatarbot.api.errors_doc import ErrorAnswer
from avatarbot.api.uploads import read_body, read_upload
from avatarbot.errors import BackendUnavailable, InvalidInput, NotFound, TooLarge
from avatarbot.services import Services

router = APIRouter(prefix="/agents", tags=["knowledge"])

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the file
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


class KnowledgeDocumentPublic(BaseModel):
    id: str
    agent: str
    filename: str
    kind: str
    size_bytes: int
    chars: int
    chunk_count: int
    created_at: datetime | None
    updated_at: datetime | None
    replaced: bool = False

    @classmethod
    def of(cls, agent: str, doc: DocumentInfo, *, replaced: bool = False) -> Any:
        return cls(agent=agent, replaced=replaced, **doc.__dict__)


class KnowledgeDocumentsPublic(BaseModel):
    data: list[KnowledgeDocumentPublic]
    count: int
    size_bytes: int
    limits: dict[str, int]


class KnowledgePassage(BaseModel):
    document: str
    document_id: str
    passage: int
    cite: str
    text: str
    score: float


class KnowledgeSearchPublic(BaseModel):
    query: str
    results: list[KnowledgePassage]


async def _agent(services: Services, name: str) -> AgentProfile:
    if services.agents is None:
        raise BackendUnavailable("the agent manager is not running")
    agent = await services.agents.get_agent(name)
    if agent is None:
        raise NotFound(f"agent {name!r} not found")
    return agent


async def _uploaded_file(request: Request, max_bytes: int) -> tuple[str, bytes]:
    """(filename, bytes) of the form's `file` field; the body is capped while it streams in."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the document as multipart/form-data with a 'file' field")
    limit_text = f"document too large (limit {max_bytes // MB} MB)"
    try:
        body = await read_body(request, max_bytes=max_bytes + FORM_OVERHEAD)
    except TooLarge:
        raise TooLarge(limit_text) from None
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    form: FormData = await Request(request.scope, receive).form(max_files=1, max_fields=8)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the form has no 'file' field with a document")
        try:
            data = await read_upload(upload, max_bytes=max_bytes)
        except TooLarge:
            raise TooLarge(limit_text) from None
        return upload.filename or "", data
    finally:
        await form.close()


@router.post(
    "/{name}/knowledge",
    response_model=KnowledgeDocumentPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={415: {"model": ErrorAnswer, "description": "Unsupported document type"}},
)
async def upload_knowledge(
    name: str, request: Request, _user: SuperUser, services: ServicesDep
) -> Any:
    """Add a document (.txt, .md, .pdf, .docx) to the agent's knowledge base; the same file
    name replaces (re-indexes) the earlier upload."""
    agent = await _agent(services, name)
    max_bytes = services.settings.knowledge.max_document_mb * MB
    filename, data = await _uploaded_file(request, max_bytes)
    doc, replaced = await knowledge_base(services).add_document(
        agent_id=agent.id, filename=filename, data=data
    )
    return KnowledgeDocumentPublic.of(agent.name, doc, replaced=replaced)


@router.get("/{name}/knowledge", response_model=KnowledgeDocumentsPublic)
async def list_knowledge(name: str, _user: CurrentUser, services: ServicesDep) -> Any:
    """The agent's documents, their total size and the upload limits."""
    agent = await _agent(services, name)
    docs = await knowledge_base(services).list_documents(agent_id=agent.id)
    limits = services.settings.knowledge
    return KnowledgeDocumentsPublic(
        data=[KnowledgeDocumentPublic.of(agent.name, d) for d in docs],
        count=len(docs),
        size_bytes=sum(d.size_bytes for d in docs),
        limits={
            "max_document_bytes": limits.max_document_mb * MB,
            "max_agent_bytes": limits.max_agent_mb * MB,
            "max_chunks_per_document": limits.max_chunks_per_document,
        },
    )


@router.get("/{name}/knowledge/search", response_model=KnowledgeSearchPublic)
async def search_knowledge(
    name: str,
    _user: CurrentUser,
    services: ServicesDep,
    q: str = Query(min_length=1, max_length=500),
    limit: int = Query(5, ge=1, le=20),
) -> Any:
    """The best passages for a query, with their document and passage number."""
    agent = await _agent(services, name)
    passages = await knowledge_base(services).search(agent_id=agent.id, query=q, limit=limit)
    return {"query": q, "results": [p.to_dict() for p in passages]}


@router.delete("/{name}/knowledge/{doc_id}")
async def delete_knowledge(
    name: str, doc_id: str, _user: SuperUser, services: ServicesDep
) -> dict[str, Any]:
    """Remove a document and all its passages from the agent's knowledge base."""
    agent = await _agent(services, name)
    if not await knowledge_base(services).delete_document(agent_id=agent.id, document_id=doc_id):
        raise NotFound(f"document {doc_id!r} not found for agent {agent.name!r}")
    return {"deleted": True, "id": doc_id}
