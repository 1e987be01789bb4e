"""Who may use which object: one small set of checks called from routers, WebSockets and tools.

Two kinds of ownership exist:
- *shareable* objects (digital humans, voice profiles): `user_id` None means shared (built-in or
  made by an administrator for everyone); otherwise only the owner and superusers may use them.
- a digital human made from a photo sent in a chat (`chat_owner` set) is that person's face:
  only that chat user (through the bot) and superusers may use it, never other accounts.
- *private* results (tasks): `user_id` None means the task was made from a chat (Feishu, WeCom,
  a schedule). Chat identities are not linked to accounts, so such tasks are readable by
  superusers only; an account's own tasks by that account.

Objects another caller may not use look exactly like missing ones (404), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement, and_, or_, true
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


def may_use_human(human: DigitalHuman, caller: Caller, chat_user: str | None = None) -> bool:
    """Digital humans: shareable, except a chat user's own photo (`chat_owner`), which only
    that chat user (`chat_user`, "<channel>:<user id>") and superusers may use."""
    if caller.is_superuser or (human.user_id is not None and human.user_id == caller.user_id):
        return True
    if human.chat_owner is not None:
        return chat_user is not None and chat_user == human.chat_owner
    return human.user_id is None


def chat_owner_of(message: Any) -> str | None:
    """The chat identity of a bot message ("<channel>:<user id>"), as `chat_owner` stores it."""
    channel = getattr(getattr(message, "channel", None), "value", None)
    user = getattr(message, "user_id", None)
    return f"{channel}:{user}" if channel and user else None


def visible_humans(caller: Caller, chat_user: str | None = None) -> ColumnElement[bool]:
    """`may_use_human` as a WHERE clause for listing digital humans."""
    if caller.is_superuser:
        return true()
    shared = and_(DigitalHuman.user_id.is_(None), DigitalHuman.chat_owner.is_(None))
    clauses = [shared]
    if caller.user_id is not None:
        clauses.append(DigitalHuman.user_id == caller.user_id)
    if chat_user is not None:
        clauses.append(DigitalHuman.chat_owner == chat_user)
    return or_(*clauses)


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
    if human is None or not may_use_human(human, caller):
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
