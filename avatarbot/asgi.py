"""ASGI entry point for uvicorn/gunicorn: `avatarbot.asgi:app`."""

from avatarbot.app import create_app

# The lifespan creates DATA_DIR and applies migrations, for `avatarbot serve` and bare uvicorn alike.
app = create_app()
