"""Agents API: create, list, read, update and delete agents (mutations need a superuser)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import AliasChoices, BaseModel, Field

from avatarbot.agents.manager import AgentManager
from avatarbot.agents.profile import AgentProfile
from avatarbot.api.deps import CurrentUser, ServicesDep, SuperUser
from avatarbot.errors import BackendUnavailable, NotFound

router = APIRouter(prefix="/agents", tags=["agents"])

_PROMPT_ALIASES = AliasChoices("prompt", "system_prompt")


class AgentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    prompt: str = Field("", max_length=20000, validation_alias=_PROMPT_ALIASES)
    capabilities: list[str] = Field(default_factory=list, max_length=32)
    brain: str = "auto"
    description: str = Field("", max_length=2000)
    config: dict[str, Any] = Field(default_factory=dict)
    digital_human_id: str | None = None
    mcp_servers: list[dict[str, Any]] = Field(default_factory=list, max_length=16)


class AgentUpdate(BaseModel):
    prompt: str | None = Field(None, max_length=20000, validation_alias=_PROMPT_ALIASES)
    capabilities: list[str] | None = Field(None, max_length=32)
    brain: str | None = None
    description: str | None = Field(None, max_length=2000)
    config: dict[str, Any] | None = None
    digital_human_id: str | None = None
    mcp_servers: list[dict[str, Any]] | None = Field(None, max_length=16)


class AgentPublic(BaseModel):
    id: str
    name: str
    description: str
    prompt: str
    capabilities: list[str]
    brain: str
    config: dict[str, Any]
    digital_human_id: str | None
    is_default: bool
    mcp_servers: list[dict[str, Any]] = Field(default_factory=list)  # env/header values masked
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, agent: AgentProfile) -> AgentPublic:
        return cls.model_validate(agent.to_public())


def _manager(services: ServicesDep) -> AgentManager:
    if services.agents is None:
        raise BackendUnavailable("the agent manager is not running")
    return services.agents


@router.post("/create", response_model=AgentPublic, status_code=status.HTTP_201_CREATED)
async def create_agent(body: AgentCreate, user: SuperUser, services: ServicesDep) -> AgentPublic:
    """Create an agent: name, system prompt, capabilities, brain, MCP servers."""
    agent = await _manager(services).create_agent(
        body.name,
        body.prompt,
        body.capabilities,
        brain=body.brain,
        description=body.description,
        config=body.config,
        digital_human_id=body.digital_human_id,
        mcp_servers=body.mcp_servers,
        allow_stdio=user.is_superuser,
    )
    return AgentPublic.of(agent)


@router.get("/list", response_model=list[AgentPublic])
async def list_agents(_user: CurrentUser, services: ServicesDep) -> list[AgentPublic]:
    return [AgentPublic.of(a) for a in await _manager(services).list_profiles()]


@router.get("/{name}", response_model=AgentPublic)
async def read_agent(name: str, _user: CurrentUser, services: ServicesDep) -> AgentPublic:
    agent = await _manager(services).get_agent(name)
    if agent is None:
        raise NotFound(f"agent {name!r} not found")
    return AgentPublic.of(agent)


@router.get("/{name}/tools")
async def read_agent_tools(name: str, _user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    """Every tool of the agent with its source (builtin, plugin:<name>, mcp:<server>)."""
    from avatarbot.agents.tools.catalog import tool_catalog

    manager = _manager(services)
    agent = await manager.get_agent(name)
    if agent is None:
        raise NotFound(f"agent {name!r} not found")
    return await tool_catalog(manager, agent)


@router.put("/{name}", response_model=AgentPublic)
async def update_agent(
    name: str, body: AgentUpdate, user: SuperUser, services: ServicesDep
) -> AgentPublic:
    """Change any of prompt, capabilities, brain, description, config, digital_human_id, mcp_servers."""
    agent = await _manager(services).update_agent(
        name,
        body.prompt,
        body.capabilities,
        brain=body.brain,
        description=body.description,
        config=body.config,
        digital_human_id=body.digital_human_id,
        mcp_servers=body.mcp_servers,
        allow_stdio=user.is_superuser,
    )
    return AgentPublic.of(agent)


@router.delete("/{name}")
async def delete_agent(name: str, _user: SuperUser, services: ServicesDep) -> dict[str, Any]:
    """Delete an agent and its conversation memory (the default agent cannot be deleted)."""
    if not await _manager(services).delete_agent(name):
        raise NotFound(f"agent {name!r} not found")
    return {"deleted": True, "name": name}
