"""create_app(settings) -> FastAPI. The lifespan builds the services and stops them again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError

from avatarbot import __version__
from avatarbot.api.docs_pages import mount_docs
from avatarbot.api.main import api_router
from avatarbot.api.middleware import REQUEST_ID_SCOPE_KEY, Metrics, RequestContextMiddleware
from avatarbot.auth.access import bearer_is_superuser
from avatarbot.auth.shared_limits import make_limiter
from avatarbot.config import ConfigManager, Settings
from avatarbot.errors import AvatarbotError
from avatarbot.health import health_report, public_health
from avatarbot.integrations.wiring import start_channels, stop_channels, webhook_router
from avatarbot.jobs.executor import JobExecutor, LocalExecutor
from avatarbot.jobs.progress import LocalProgressBus, ProgressBus
from avatarbot.logging_setup import configure_logging, request_id_var
from avatarbot.pipeline.bootstrap import bootstrap_pipeline
from avatarbot.services import Services
from avatarbot.storage import migrate
from avatarbot.storage.db import Database
from avatarbot.storage.redis import RedisManager
from avatarbot.web import mount_console

logger = logging.getLogger(__name__)


async def build_services(config: ConfigManager, *, run_migrations: bool = True) -> Services:
    settings = config.settings
    settings.ensure_dirs()
    # Backends, job handlers and the ModelManager: the same in every process (lazy, cheap).
    bootstrap_pipeline(settings)
    if run_migrations:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    db = Database(settings.database_url)
    redis = RedisManager(settings.redis_url)
    bus = _progress_bus(settings)
    await bus.start()
    executor = _executor(settings, db=db, bus=bus)
    return Services(
        config=config,
        db=db,
        redis=redis,
        bus=bus,
        executor=executor,
        # Shared by every replica when Redis is configured (auth.shared_limits).
        login_limiter=make_limiter(
            settings.redis_url, "login", settings.auth.login_attempts_per_minute, 60.0
        ),
    )


def _progress_bus(settings: Settings) -> ProgressBus:
    if settings.redis_url:
        from avatarbot.jobs.redis_progress import RedisProgressBus

        return RedisProgressBus(settings.redis_url)
    return LocalProgressBus()


def _executor(settings: Settings, *, db: Database, bus: ProgressBus) -> JobExecutor:
    # With Redis, work goes to Celery workers (`avatarbot worker`); without, a local pool.
    if settings.redis_url:
        from avatarbot.jobs.celery_executor import CeleryExecutor

        return CeleryExecutor(db=db, bus=bus, settings=settings)
    return LocalExecutor(db=db, bus=bus, settings=settings)


async def start_services(services: Services) -> None:
    await services.executor.start()
    from avatarbot.plugins.service import PluginService

    settings = services.settings
    plugins = PluginService(
        settings.data_dir, media_dir=settings.media_dir, redis_url=settings.redis_url
    )
    await asyncio.to_thread(plugins.start)
    services.plugins = plugins
    plugins.follow_database(services.db)  # enable/disable made on other replicas
    # Agents after plugins: the default agent's tools include the plugins' tools.
    await _start_agents(services)


async def start_scheduler(services: Services) -> None:
    """Scheduled reports: only in the server, after the agents and channels they use."""
    from avatarbot.scheduler.runner import SchedulerService

    services.scheduler = SchedulerService(services)
    await services.scheduler.start()


async def _start_agents(services: Services) -> None:
    from avatarbot.agents.manager import AgentManager
    from avatarbot.api.websocket import connection_registry

    connection_registry(services)
    services.agents = AgentManager(services)
    await services.agents.start()


async def stop_services(services: Services) -> None:
    if services.scheduler is not None:
        await services.scheduler.stop()
        services.scheduler = None
    if services.agents is not None:
        await services.agents.stop()
    if services.plugins is not None:
        await services.plugins.stop_following()
        await asyncio.to_thread(services.plugins.stop)
    await services.executor.stop()
    await services.bus.stop()
    services.redis.close()
    await services.db.dispose()


def _install_sighup(config: ConfigManager) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def _reload() -> None:
        try:
            config.reload()
        except ValueError as exc:
            logger.error("SIGHUP reload failed: %s", exc)

    # Not available on Windows or outside the main loop; SIGHUP reload is then just absent.
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, _reload)


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings()
    config = ConfigManager(settings)
    configure_logging(settings.log_level, settings.log_format)
    config.add_listener(lambda s: configure_logging(s.log_level, s.log_format))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(config, run_migrations=run_migrations)
        app.state.services = services
        await start_services(services)
        await start_channels(services)
        await start_scheduler(services)
        _install_sighup(config)
        logger.info("avatarbot %s started (db=%s)", __version__, services.db.dialect)
        try:
            yield
        finally:
            if services.scheduler is not None:  # before the channels its reports go through
                await services.scheduler.stop()
                services.scheduler = None
            await stop_channels(services)
            await stop_services(services)

    app = FastAPI(
        title="avatarbot",
        version=__version__,
        description="Chat-bot agents for Feishu and WeCom that answer with talking digital-human "
        "videos.",
        lifespan=lifespan,
        docs_url=None,  # served by mount_docs from bundled files: works offline
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.config = config
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    _add_exception_handlers(app)
    # /webhooks/*: signed by the platforms, no bearer token. First, because routes are
    # matched in order and the platforms wait on these answers (the API has ~100 routes).
    app.include_router(webhook_router())
    app.include_router(api_router)
    _add_core_routes(app)
    mount_docs(app)
    mount_console(app)
    return app


def _add_exception_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AvatarbotError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this outside RequestContextMiddleware, whose id is then only in scope.
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY) or request_id_var.get()
        token = request_id_var.set(request_id)
        try:
            logger.exception("unhandled error", exc_info=exc)
        finally:
            request_id_var.reset(token)
        return JSONResponse(
            {"detail": f"internal error (request id {request_id})"},
            status_code=500,
            headers={"x-request-id": request_id},
        )

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value the schemas let through (NUL byte in PostgreSQL text,
        # number out of range): the caller's input, so 4xx. Other database errors stay 500.
        # The driver text quotes the statement and its parameters, so it is not answered.
        if not _is_rejected_value(exc):
            return await on_unexpected(request, exc)
        logger.warning("database refused a value (%s)", type(exc).__name__)
        return JSONResponse(
            {"detail": "a value cannot be stored: out of range or contains NUL characters"},
            status_code=422,
        )

    app.add_exception_handler(AvatarbotError, on_domain_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)


def _is_rejected_value(exc: BaseException) -> bool:
    """A DBAPI error caused by a value: SQLSTATE class 22 ("data exception") in the chain."""
    if isinstance(exc, DataError):
        return True
    seen: BaseException | None = exc
    for _ in range(5):  # sqlalchemy -> adapter -> driver; bounded against cycles
        if seen is None:
            break
        if str(getattr(seen, "sqlstate", "") or "").startswith("22"):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def _add_core_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Any:
        info = {
            "name": "avatarbot",
            "version": __version__,
            "docs": "/docs",
            "redoc": "/redoc",
            "health": "/health",
            "api": "/api/v1",
        }
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            from avatarbot.web import console_index

            page = console_index()
            if page is not None:
                return page
        return info

    @app.get("/health", tags=["meta"], responses={503: {"description": "A component failed"}})
    async def health(request: Request) -> JSONResponse:
        """Status of each component: ok, disabled or error (with a reason)."""
        services = request.app.state.services
        report = await health_report(services)
        if not await bearer_is_superuser(request, services):
            report = public_health(report)  # paths and URLs only for administrators
        return JSONResponse(report, status_code=200 if report["status"] != "error" else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )
