"""Test-only crash points for the chaos suite (tests/e2e/test_chaos.py). Never set in production.

`AVATARBOT_TEST_KILL_AT=<stage>` (or `<stage>:<kind>`) makes the process SIGKILL itself the
first time it reaches that stage, so a test can crash the server at an exact moment instead
of guessing with sleeps. Stages: `ack` (the webhook answered, nothing handled yet), `render`
(a task's handler reported progress), `upload` (a media file was uploaded, not yet sent),
`send` (the platform accepted a message, the outbox row is not yet marked sent). Kinds are
the outbox row kinds (text, markdown, progress, video, audio, image).
"""

from __future__ import annotations

import logging
import os
import signal

KILL_ENV = "AVATARBOT_TEST_KILL_AT"

logger = logging.getLogger(__name__)


def kill_point(stage: str, kind: str = "") -> None:
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    if wanted == stage or (kind and wanted == f"{stage}:{kind}"):
        logger.warning("%s=%s reached: killing this process (test only)", KILL_ENV, wanted)
        os.kill(os.getpid(), signal.SIGKILL)
