"""Who may use which object: one small set of checks called from routers, WebSockets and tools.

Two kinds of ownership exist:
- *shareable* objects (digital humans, voice profiles): `user_id` None means shared (built-in or
  made by an administrator for everyone); otherwise only the owner and superusers may use them.
- *private* results (tasks): `user_id` None means the task was made from a chat (Feishu, WeCom,
  a schedule). Chat identities are not linked to accounts, so such tasks are readable by
  superusers only; an account's own tasks by that account.

Objects another caller may not use look exactly like missing ones (404), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.errors import AvatarbotError, NotFound, PermissionDenied
from avatarbot.services import Services
from avatarbot.storage.models import DigitalHuman, Task, User, VoiceProfile


@dataclass(frozen=True)
class Caller:
    """Who is asking: an account (`user_id`) or a chat identity (`user_id` None)."""

    user_id: int | None
    is_superuser: bool = False

    @classmethod
    def of(cls, user: User | None) -> Caller:
        if user is None:
            return cls(user_id=None)
        return cls(user_id=user.id, is_superuser=user.is_superuser)


def may_use_shared(owner_id: int | None, caller: Caller) -> bool:
    """Shareable objects: shared ones (owner None), your own, or any for a superuser."""
    return caller.is_superuser or owner_id is None or owner_id == caller.user_id


def may_change(owner_id: int | None, caller: Caller) -> bool:
    """Changing or deleting: your own objects; shared ones (owner None) only for superusers."""
    return caller.is_superuser or (owner_id is not None and owner_id == caller.user_id)


def require_change(owner_id: int | None, caller: Caller, what: str) -> None:
    if not may_change(owner_id, caller):
        raise PermissionDenied(f"only an administrator can change the shared {what}")


def may_read_private(owner_id: int | None, caller: Caller) -> bool:
    """Private results: your own; chat-made ones (owner None) only for superusers."""
    return caller.is_superuser or (owner_id is not None and owner_id == caller.user_id)


def may_read_task(task: Task, caller: Caller) -> bool:
    return may_read_private(task.user_id, caller)


async def caller_of(session: AsyncSession, user_id: int | None) -> Caller:
    """The Caller for an account id as carried by a chat message (IncomingMessage.owner_id)."""
    if user_id is None:
        return Caller(user_id=None)
    user = await session.get(User, user_id)
    return Caller.of(user) if user is not None else Caller(user_id=user_id)


async def usable_digital_human(
    session: AsyncSession, human_id: str, caller: Caller
) -> DigitalHuman:
    """The digital human, or NotFound when it is missing or the caller may not use it."""
    human = await session.get(DigitalHuman, human_id)
    if human is None or not may_use_shared(human.user_id, caller):
        raise NotFound(f"digital human {human_id} not found")
    return human


async def usable_voice_profile(
    session: AsyncSession, profile_id: str, caller: Caller
) -> VoiceProfile:
    """The voice profile, or NotFound when it is missing or the caller may not use it."""
    profile = await session.get(VoiceProfile, profile_id)
    if profile is None or not may_use_shared(profile.user_id, caller):
        raise NotFound(f"voice profile {profile_id} not found")
    return profile


async def bearer_is_superuser(request: Request, services: Services) -> bool:
    """Whether an optional `Authorization: Bearer` header names an active superuser (public
    routes such as /health show more to administrators; a bad token just shows less)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    from avatarbot.api.deps import user_from_token

    async with services.db.session() as session:
        try:
            user = await user_from_token(token.strip(), services, session)
        except AvatarbotError:
            return False
    return user.is_superuser
