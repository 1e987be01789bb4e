"""A user's photo becomes their digital human for the chat (/avatar, "use this photo").

The same checks as POST /digital-human/create: the image bytes decide the type, and the
portrait must show exactly one face (pipeline.face.analyse_portrait). The chat's binding
then points at the new digital human, so /video and the agent's videos use it.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from avatarbot.auth.access import chat_owner_of
from avatarbot.bot import router
from avatarbot.bot.types import IncomingMessage, Reply
from avatarbot.errors import InvalidInput
from avatarbot.services import Services
from avatarbot.storage.base import new_id
from avatarbot.storage.models import DigitalHuman


def _store_portrait(photo: Path, path: Path) -> None:
    """Copy and check for one face (blocking: run in a thread); nothing stays on failure."""
    from avatarbot.pipeline.face import analyse_portrait

    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(photo, path)
    try:
        analyse_portrait(path)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise


async def make_avatar(services: Services, msg: IncomingMessage, photo: Path) -> list[Reply]:
    human_id = new_id()
    path = services.settings.data_dir / "digital_humans" / human_id / f"portrait{photo.suffix}"
    try:
        await asyncio.to_thread(_store_portrait, photo, path)
    except InvalidInput as exc:
        return [
            Reply.of_text(
                f"I could not use that photo as your digital human: {exc.message}. "
                "Please send a clear photo with exactly one face, looking at the camera."
            )
        ]
    who = msg.user_name or msg.user_id or "chat user"
    human = DigitalHuman(
        id=human_id,
        user_id=msg.owner_id,
        name=f"{who} (photo)"[:100],
        description=f"From a photo sent on {msg.channel.value} by {msg.user_id} in {msg.chat_id}",
        image_path=str(path),
        default_mode=services.settings.pipeline.default_mode,
        chat_owner=chat_owner_of(msg),  # their face: not shared with anyone else
    )
    async with services.db.session() as session:
        session.add(human)
        await session.commit()
    route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
    await router.bind(
        services,
        platform=msg.channel.value,
        chat_id=msg.chat_id,
        agent_name=route.agent_name,
        digital_human_id=human_id,
    )
    return [
        Reply.of_text("Done: your photo is now the digital human of this chat. Try /video 你好.")
    ]
