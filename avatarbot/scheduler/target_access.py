"""Who may push a schedule where: checked when a schedule is created or its target changes.

- Superusers may target any chat.
- A chat identity (a schedule made from a Feishu/WeCom chat by the agent tool) may target only
  the chat it spoke from.
- A normal account may target only chats bound to it. Chat identities are not linked to
  accounts yet, so for now that is none: normal users push to group-robot webhooks.
- Robot/webhook URLs: https on a public host unless AVATARBOT_SCHEDULER__ALLOW_PRIVATE_URLS.
"""

from __future__ import annotations

from typing import Any

from avatarbot.auth.access import Caller
from avatarbot.config import Settings
from avatarbot.errors import PermissionDenied
from avatarbot.netguard import check_outbound_url
from avatarbot.scheduler.validation import validate_target


def _same_chat(target: dict[str, Any], origin: dict[str, Any]) -> bool:
    if target.get("platform") != origin.get("platform"):
        return False
    keys = ("chat_id", "user_id")
    wanted = {k: target.get(k) for k in keys if target.get(k)}
    return bool(wanted) and all(origin.get(k) == v for k, v in wanted.items())


async def check_target(
    target: Any,
    *,
    caller: Caller,
    settings: Settings,
    origin: dict[str, Any] | None = None,
) -> None:
    """PermissionDenied / InvalidInput unless `caller` may send a schedule's reports to `target`.

    `origin` is the chat a chat identity asked from, in target form ({platform, chat_id|user_id}).
    """
    cleaned = validate_target(target)  # shape errors first, with their usual messages
    if cleaned["platform"] == "webhook":
        await check_outbound_url(
            cleaned["url"],
            allow_private=settings.scheduler.allow_private_urls,
            must_resolve=False,
        )
        return
    if caller.is_superuser:
        return
    if caller.user_id is None and origin is not None and _same_chat(cleaned, origin):
        return
    if caller.user_id is None:
        raise PermissionDenied("a schedule made in a chat can only post to that same chat")
    raise PermissionDenied(
        "you can only schedule reports into chats bound to your account, and none is; use a "
        "group-robot webhook target or ask an administrator"
    )
