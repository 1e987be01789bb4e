"""What a user sent last in a conversation, kept for an hour: the photo that `/avatar` (or "use
this photo") refers to, the document that `/kb` adds to the knowledge base.

One file per conversation and kind, under
`<data_dir>/user_media/last_<kind>/<conversation hash>/<file name>`; keeping a new one replaces
the last. Blocking file I/O: call from a thread.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from avatarbot.bot.types import IncomingMessage
from avatarbot.services import Services

TTL_S = 3600  # "use this photo" and "/kb" refer to what came in the last hour


def _folder(services: Services, msg: IncomingMessage, kind: str) -> Path:
    stem = hashlib.sha256(msg.conversation.encode()).hexdigest()[:32]
    return services.settings.data_dir / "user_media" / f"last_{kind}" / stem


def keep(services: Services, msg: IncomingMessage, kind: str, name: str, data: bytes) -> Path:
    """Store `data` as this conversation's last `kind` under its (cleaned) name."""
    from avatarbot.agents.knowledge.store import clean_filename

    folder = _folder(services, msg, kind)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / clean_filename(name)
    path.write_bytes(data)
    return path


def last(services: Services, msg: IncomingMessage, kind: str) -> Path | None:
    """This conversation's last `kind`, when it came recently enough."""
    folder = _folder(services, msg, kind)
    for path in folder.glob("*") if folder.is_dir() else ():
        if path.is_file() and time.time() - path.stat().st_mtime <= TTL_S:
            return path
    return None
