"""ASGI entry point for uvicorn/gunicorn: `avatarbot.asgi:app`."""

from avatarbot.app import create_app

# Migrations already ran in `avatarbot serve`; a bare `uvicorn avatarbot.asgi:app` runs them here.
app = create_app()
