"""User data functions (DB only)."""

from __future__ import annotations

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.auth.security import dummy_hash, get_password_hash, verify_password
from avatarbot.errors import Conflict, PermissionDenied
from avatarbot.storage.models import User


async def count(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def get(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_login(*, session: AsyncSession, login: str) -> User | None:
    """Find a user by email (case-insensitive) or username."""
    stmt = select(User).where(or_(func.lower(User.email) == login.lower(), User.username == login))
    return (await session.scalars(stmt)).first()


async def create(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    username: str | None = None,
    is_superuser: bool = False,
) -> User:
    user = User(
        email=email.lower(),
        username=username,
        password_hash=get_password_hash(password),
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("a user with this email or username already exists") from exc
    await session.refresh(user)
    return user


async def authenticate(*, session: AsyncSession, login: str, password: str) -> User | None:
    user = await get_by_login(session=session, login=login)
    if user is None:
        verify_password(password, dummy_hash())  # same cost as a real check
        return None
    if not verify_password(password, user.password_hash) or not user.is_active:
        return None
    return user


async def _lock_users(session: AsyncSession) -> None:
    """Serialise registrations until the transaction ends, so that "is this the first user?"
    and the insert are one atomic step (12 concurrent first sign-ups made 2 superusers)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Blocks other writers of users (not readers) until commit or rollback.
        await session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
    elif dialect == "sqlite":
        # A write statement opens the transaction and takes SQLite's single writer lock even
        # when it touches no row; other registrations wait for it (busy timeout).
        await session.execute(text("UPDATE users SET id = id WHERE 0 = 1"))


async def register(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    username: str | None,
    open_registration: bool,
) -> User:
    """Self-registration: the very first account becomes the (only) superuser; later ones need
    open registration. Exactly one concurrent first registration wins."""
    password_hash = get_password_hash(password)  # slow: done before taking the lock
    await _lock_users(session)
    first = await count(session=session) == 0
    if not first and not open_registration:
        await session.rollback()
        raise PermissionDenied("registration is closed; ask an administrator for an account")
    user = User(
        email=email.lower(),
        username=username,
        password_hash=password_hash,
        is_superuser=first,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("a user with this email or username already exists") from exc
    await session.refresh(user)
    return user
