"""Register, log in, refresh tokens, read the current user."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from avatarbot.api.deps import CurrentUser, ServicesDep, SessionDep, active_user_from_claims
from avatarbot.auth import service as user_service
from avatarbot.auth.security import create_token, decode_token
from avatarbot.errors import RateLimited, Unauthorized

router = APIRouter(prefix="/auth", tags=["auth"])

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$"


class UserRegister(BaseModel):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=8, max_length=128)
    username: str | None = Field(
        default=None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str | None
    is_active: bool
    is_superuser: bool
    created_at: datetime


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class AuthStatus(BaseModel):
    has_users: bool
    open_registration: bool


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=4096)


def _issue_tokens(services: ServicesDep, user_id: int) -> Tokens:
    auth = services.settings.auth
    secret = services.settings.secret_key()
    return Tokens(
        access_token=create_token(
            user_id,
            kind="access",
            secret=secret,
            expires_delta=timedelta(minutes=auth.access_token_minutes),
        ),
        refresh_token=create_token(
            user_id,
            kind="refresh",
            secret=secret,
            expires_delta=timedelta(days=auth.refresh_token_days),
        ),
        expires_in=auth.access_token_minutes * 60,
    )


@router.get("/status", response_model=AuthStatus)
async def read_auth_status(services: ServicesDep, session: SessionDep) -> AuthStatus:
    """Public: whether any account exists yet (first-run setup) and whether anyone may register."""
    has_users = await user_service.count(session=session) > 0
    return AuthStatus(
        has_users=has_users,
        open_registration=not has_users or services.settings.auth.open_registration,
    )


@router.post("/register", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
async def register(body: UserRegister, services: ServicesDep, session: SessionDep) -> UserPublic:
    """Create an account. The first account becomes superuser; later ones need open registration."""
    user = await user_service.register(
        session=session,
        email=body.email,
        password=body.password,
        username=body.username,
        open_registration=services.settings.auth.open_registration,
    )
    return UserPublic.model_validate(user)


@router.post("/login", response_model=Tokens)
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    session: SessionDep,
) -> Tokens:
    """Log in with email or username and password (OAuth2 password form)."""
    if len(form.username) > 254 or len(form.password) > 128:
        raise Unauthorized("incorrect username or password")
    ip = request.client.host if request.client else "unknown"
    limiter = services.login_limiter
    # Both keys are counted so that one IP cannot spray many accounts and many IPs cannot
    # hammer one account.
    ip_ok = limiter.hit(f"ip:{ip}")
    user_ok = limiter.hit(f"user:{form.username.lower()}")
    if not (ip_ok and user_ok):
        retry = max(limiter.retry_after(f"ip:{ip}"), limiter.retry_after(f"user:{form.username}"))
        raise RateLimited(f"too many login attempts; try again in {retry} s")
    user = await user_service.authenticate(
        session=session, login=form.username, password=form.password
    )
    if user is None:
        raise Unauthorized("incorrect username or password")
    return _issue_tokens(services, user.id)


@router.post("/refresh", response_model=Tokens)
async def refresh(body: RefreshRequest, services: ServicesDep, session: SessionDep) -> Tokens:
    """Trade a refresh token for a new access + refresh token pair."""
    payload = decode_token(
        body.refresh_token, secret=services.settings.secret_key(), expected="refresh"
    )
    user = await active_user_from_claims(payload, session)
    return _issue_tokens(services, user.id)


@router.get("/me", response_model=UserPublic)
async def read_me(user: CurrentUser) -> UserPublic:
    """The user the access token belongs to."""
    return UserPublic.model_validate(user)
