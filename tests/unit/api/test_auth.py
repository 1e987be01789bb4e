"""Auth routes on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.auth.security import create_token
from tests.conftest import make_settings

PASSWORD = "correct horse battery"


@pytest.fixture
async def db_client(any_database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path, database_url=any_database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def _register(c: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    return await c.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, **extra}
    )


async def _login(c: httpx.AsyncClient, login: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/v1/auth/login", data={"username": login, "password": password})


async def test_register_login_me_flow(db_client: httpx.AsyncClient) -> None:
    r = await _register(db_client, "Ann@Example.com", username="ann")
    assert r.status_code == 201
    assert r.json()["is_superuser"] is True  # first user
    for login in ("ann@example.com", "ann"):
        r = await _login(db_client, login)
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    me = await db_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    assert "password" not in me.text and "hash" not in me.text


async def test_wrong_password_and_unknown_user_are_401(db_client: httpx.AsyncClient) -> None:
    await _register(db_client, "bob@example.com")
    assert (await _login(db_client, "bob@example.com", "wrong password!")).status_code == 401
    assert (await _login(db_client, "nobody@example.com")).status_code == 401


async def test_second_registration_is_closed(db_client: httpx.AsyncClient) -> None:
    assert (await _register(db_client, "first@example.com")).status_code == 201
    r = await _register(db_client, "second@example.com")
    assert r.status_code == 403
    assert "closed" in r.json()["detail"]


async def test_open_registration_allows_more_users(tmp_path: Path) -> None:
    app = create_app(
        make_settings(tmp_path, auth={"secret_key": "k" * 40, "open_registration": True})
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        assert (await _register(c, "a@example.com")).status_code == 201
        r = await _register(c, "b@example.com")
        assert r.status_code == 201 and r.json()["is_superuser"] is False
        assert (await _register(c, "b@example.com")).status_code == 409


async def test_expired_and_garbage_tokens_are_401(db_client: httpx.AsyncClient) -> None:
    await _register(db_client, "c@example.com")
    expired = create_token(
        1,
        kind="access",
        secret="test-secret-key-0123456789abcdef0123456789",
        expires_delta=timedelta(seconds=-5),
    )
    for token in (expired, "garbage", "a.b.c"):
        r = await db_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
    assert (await db_client.get("/api/v1/auth/me")).status_code == 401


async def test_refresh_gives_new_tokens_and_rejects_access_tokens(
    db_client: httpx.AsyncClient,
) -> None:
    await _register(db_client, "d@example.com")
    tokens = (await _login(db_client, "d@example.com")).json()
    r = await db_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert r.status_code == 200
    new_access = r.json()["access_token"]
    me = await db_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new_access}"})
    assert me.status_code == 200
    r = await db_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "login",
    ["' OR '1'='1", "admin'--", "x" * 10_000, '" OR 1=1; DROP TABLE users; --'],
)
async def test_hostile_logins_are_4xx(db_client: httpx.AsyncClient, login: str) -> None:
    await _register(db_client, "e@example.com")
    r = await _login(db_client, login, "' OR '1'='1")
    assert 400 <= r.status_code < 500


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x" * 10_000 + "@example.com", "password": PASSWORD},
        {"email": "f@example.com", "password": "p" * 10_000},
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "g@example.com", "password": "short"},
        {"email": "'; DROP TABLE users; --@x.io", "password": PASSWORD, "username": "a'--"},
        {"email": "h@example.com"},
    ],
)
async def test_bad_registrations_are_4xx(db_client: httpx.AsyncClient, body: dict) -> None:
    r = await db_client.post("/api/v1/auth/register", json=body)
    assert 400 <= r.status_code < 500, r.text


async def test_login_rate_limited_with_429(db_client: httpx.AsyncClient) -> None:
    await _register(db_client, "rl@example.com")
    codes = [
        (await _login(db_client, "rl@example.com", "bad password")).status_code for _ in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]
    # Even the right password is refused while limited.
    assert (await _login(db_client, "rl@example.com")).status_code == 429
