"""feedback_event: a user's rating of a reply, logged and kept raw (its codes are undocumented)."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


async def store_feedback(
    services: Any, platform: str, body: dict[str, Any], event: dict[str, Any]
) -> None:
    nested = event.get("feedback_event")
    feedback = nested if isinstance(nested, dict) else event
    sender = body.get("from") if isinstance(body.get("from"), dict) else {}
    user = str(sender.get("userid") or "")
    logger.info("%s feedback from %s: %s", platform, user, str(feedback)[:300])
    if services is None:
        return
    from avatarbot.storage.models import ChatFeedback

    rating = feedback.get("type")
    async with services.db.session() as session:
        session.add(
            ChatFeedback(
                platform=platform,
                feedback_id=str(feedback.get("id") or "")[:256],
                user_id=user[:200],
                rating=rating if isinstance(rating, int) else None,
                content=str(feedback.get("content") or "")[:4000],
                raw=body,
            )
        )
        await session.commit()
