"""Builds the configured channels and the BotService in the app's lifespan, and stops them."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from avatarbot.bot.service import BotService
from avatarbot.services import Services

logger = logging.getLogger(__name__)


def webhook_router() -> APIRouter:
    """The platform webhooks (outside /api/v1: they authenticate by signature, not token)."""
    from avatarbot.api.errors_doc import WEBHOOK_ERROR_RESPONSES
    from avatarbot.integrations.feishu.webhook import router as feishu_router
    from avatarbot.integrations.wecom.webhook import router as wecom_router
    from avatarbot.integrations.wecom_bot.webhook import router as wecom_bot_router

    router = APIRouter(responses=WEBHOOK_ERROR_RESPONSES)
    router.include_router(feishu_router)
    router.include_router(wecom_router)
    router.include_router(wecom_bot_router)
    return router


async def start_channels(services: Services) -> None:
    settings = services.settings
    from avatarbot.integrations.wecom.group_robot import robot_for_url

    bot = BotService(services)
    # Robot senders take an optional target (a webhook is its own destination).
    bot.robot_sender = lambda url, secret: robot_for_url(  # type: ignore[assignment,return-value]
        url, secret=secret, allow_private=services.settings.scheduler.allow_private_urls
    )
    services.bot = bot
    if settings.feishu.enabled:
        from avatarbot.integrations.feishu.channel import FeishuChannel

        feishu = FeishuChannel(settings.feishu)
        feishu.bot = bot
        services.channels["feishu"] = feishu
        bot.register_sender("feishu", feishu)
        await feishu.start()
    if settings.wecom.enabled:
        from avatarbot.integrations.wecom.channel import WecomChannel

        wecom = WecomChannel(settings.wecom)
        wecom.bot = bot
        services.channels["wecom"] = wecom
        bot.register_sender("wecom", wecom)
        await wecom.start()
    if settings.wecom_bot.enabled:
        from avatarbot.integrations.wecom_bot.channel import WecomBotChannel

        wecom_bot = WecomBotChannel(settings.wecom_bot, services=services)
        wecom_bot.bot = bot
        services.channels["wecom_bot"] = wecom_bot
        bot.register_sender("wecom_bot", wecom_bot)
        await wecom_bot.start()
    await bot.start()
    logger.info("chat channels: %s", ", ".join(services.channels) or "none configured")


async def stop_channels(services: Services) -> None:
    if services.bot is not None:
        await services.bot.stop()
    for name, channel in list(services.channels.items()):
        try:
            await channel.stop()
        except Exception:  # stopping one channel must not keep the others running
            logger.exception("stopping channel %s failed", name)
    services.channels.clear()
