"""The `search_knowledge` tool (capability `knowledge`) over the calling agent's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avatarbot.agents.knowledge.store import knowledge_base
from avatarbot.errors import InvalidInput
from avatarbot.tools import ToolSpec

if TYPE_CHECKING:
    from avatarbot.agents.tools.builtin import ToolCallContext

CAPABILITY = "knowledge"
TOOL_NAME = "search_knowledge"
MAX_QUERY_CHARS = 500


def knowledge_tools(ctx: ToolCallContext) -> list[ToolSpec]:
    agent = ctx.agent

    async def search_knowledge(query: str, top_k: int = 4) -> dict[str, Any]:
        query = (query or "").strip()
        if not query:
            raise InvalidInput("the search query is empty")
        passages = await knowledge_base(ctx.services).search(
            agent_id=agent.id, query=query[:MAX_QUERY_CHARS], limit=top_k
        )
        result: dict[str, Any] = {
            "query": query,
            "results": [p.to_dict() for p in passages],
        }
        if not passages:
            result["note"] = "No passage matched. Say so; do not make up an answer."
        return result

    return [
        ToolSpec(
            name=TOOL_NAME,
            description=(
                "Search this agent's knowledge base (uploaded handbooks, manuals, documents) "
                "and get the best passages with their document name and passage number. "
                "Answer from them and cite each fact as [document #passage], e.g. "
                "[handbook.pdf #3]. 在知识库（上传的手册、文档）中检索，回答时注明出处。"
            ),
            handler=search_knowledge,
            parameters={
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "Keywords or a question, in the documents' language",
                    },
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 10},
                },
                "required": ["query"],
            },
            capability=CAPABILITY,
        )
    ]
