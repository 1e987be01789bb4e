"""The running services of one process, built once by the app's lifespan (or a worker/CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avatarbot.auth.shared_limits import Limiter
from avatarbot.config import ConfigManager, Settings
from avatarbot.jobs.executor import JobExecutor
from avatarbot.jobs.progress import ProgressBus
from avatarbot.storage.db import Database
from avatarbot.storage.redis import RedisManager


@dataclass
class Services:
    config: ConfigManager
    db: Database
    redis: RedisManager
    bus: ProgressBus
    executor: JobExecutor
    login_limiter: Limiter
    # Filled in by the domains that own them (None/empty until started).
    agents: Any = None  # agents.manager.AgentManager
    bot: Any = None  # bot.service.BotService
    plugins: Any = None  # plugins.manager.PluginManager
    scheduler: Any = None  # scheduler.service.SchedulerService
    channels: dict[str, Any] = field(default_factory=dict)  # "feishu"/"wecom" -> channel object
    ws_connections: Any = None  # api.websocket.ConnectionRegistry

    @property
    def settings(self) -> Settings:
        return self.config.settings
