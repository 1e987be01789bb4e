"""Argon2 password hashes and PyJWT access/refresh tokens."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from avatarbot.errors import Unauthorized

ALGORITHM = "HS256"
TokenKind = Literal["access", "refresh"]

_hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verified against when the user does not exist, so that timing does not reveal which
    emails exist. Made on first use: an argon2 hash costs ~0.2 s, too much for import time."""
    return _hasher.hash("not-a-real-password")


def get_password_hash(password: str) -> str:
    return _hasher.hash(password)


def verify_password(plain_password: str, hashed_password: str) -> bool:
    try:
        return _hasher.verify(hashed_password, plain_password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_token(
    subject: str | int, *, kind: TokenKind, secret: str, expires_delta: timedelta
) -> str:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": str(subject),
        "type": kind,
        "iat": now,
        "exp": now + expires_delta,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(token: str, *, secret: str, expected: TokenKind) -> dict[str, Any]:
    """Return the payload or raise Unauthorized (expired, garbage, wrong kind)."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if payload.get("type") != expected:
        raise Unauthorized(f"expected a {expected} token")
    return payload
