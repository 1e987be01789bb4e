"""Persistent state: SQLAlchemy 2.0 async models, engine/session, alembic migrations, Redis."""
