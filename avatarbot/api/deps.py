"""Shared FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.auth import service as user_service
from avatarbot.auth.security import decode_token
from avatarbot.config import Settings
from avatarbot.errors import PermissionDenied, Unauthorized
from avatarbot.services import Services
from avatarbot.storage.models import User

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def user_from_token(token: str | None, services: Services, session: AsyncSession) -> User:
    if not token:
        raise Unauthorized("not authenticated")
    payload = decode_token(token, secret=services.settings.secret_key(), expected="access")
    return await active_user_from_claims(payload, session)


async def active_user_from_claims(payload: dict[str, Any], session: AsyncSession) -> User:
    """The active user a decoded token names (access or refresh); Unauthorized otherwise."""
    try:
        user_id = int(payload["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("invalid token") from exc
    user = await user_service.get(session=session, user_id=user_id)
    if user is None or not user.is_active:
        raise Unauthorized("user not found or inactive")
    return user


async def get_current_user(token: TokenDep, services: ServicesDep, session: SessionDep) -> User:
    return await user_from_token(token, services, session)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise PermissionDenied("superuser required")
    return user


SuperUser = Annotated[User, Depends(get_current_superuser)]


async def websocket_user(websocket: WebSocket, token: str | None) -> User | None:
    """Authenticate a WebSocket by its access token; None when missing or invalid."""
    services: Services = websocket.app.state.services
    async with services.db.session() as session:
        try:
            return await user_from_token(token, services, session)
        except Unauthorized:
            return None
