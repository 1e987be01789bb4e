"""All ORM models, one section per domain. Migrations live in storage/migrations/."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from avatarbot.storage.base import Base, TimestampMixin, UtcDateTime, new_id, utcnow


def _enum(enum_cls: type[StrEnum]) -> Enum:
    # Store enum values (not names) as plain strings: portable and readable in SQL.
    return Enum(
        enum_cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        length=32,
        validate_strings=True,
    )


# --- users -------------------------------------------------------------------------------


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)

    digital_humans: Mapped[list[DigitalHuman]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    tasks: Mapped[list[Task]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


# --- pipeline: voices and digital humans -------------------------------------------------


class VoiceProfile(TimestampMixin, Base):
    __tablename__ = "voice_profiles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    backend: Mapped[str] = mapped_column(String(32), default="espeak")
    voice: Mapped[str] = mapped_column(String(100), default="")  # backend voice id, e.g. "cmn"
    language: Mapped[str] = mapped_column(String(16), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # speed, pitch, ...
    reference_path: Mapped[str | None] = mapped_column(String(500))
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DigitalHuman(TimestampMixin, Base):
    __tablename__ = "digital_humans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    image_path: Mapped[str] = mapped_column(String(500))
    voice_profile_id: Mapped[str | None] = mapped_column(
        ForeignKey("voice_profiles.id", ondelete="SET NULL")
    )
    default_mode: Mapped[str] = mapped_column(String(32), default="talking_head")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Made from a photo sent in a chat: "<channel>:<platform user id>" of the sender. Such a
    # portrait is that person's face, not a shared one: only they (in chat) and superusers see it.
    chat_owner: Mapped[str | None] = mapped_column(String(200), default=None, index=True)

    user: Mapped[User | None] = relationship(back_populates="digital_humans")


# --- jobs --------------------------------------------------------------------------------


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TaskType(StrEnum):
    VIDEO_GENERATION = "video_generation"
    VOICE_SYNTHESIS = "voice_synthesis"
    FACE_ANIMATION = "face_animation"
    REPORT_GENERATION = "report_generation"
    BATCH_PROCESSING = "batch_processing"
    CUSTOM = "custom"


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    task_type: Mapped[TaskType] = mapped_column(_enum(TaskType), index=True)
    status: Mapped[TaskStatus] = mapped_column(
        _enum(TaskStatus), default=TaskStatus.PENDING, index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(32), default="")
    message: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_path: Mapped[str | None] = mapped_column(String(500))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    worker: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The runner's lease (owner = `worker`): another process may take the task only after it.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    user: Mapped[User | None] = relationship(back_populates="tasks")


# --- agents ------------------------------------------------------------------------------


class Agent(TimestampMixin, Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    brain: Mapped[str] = mapped_column(String(32), default="auto")  # auto | rules | llm
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    digital_human_id: Mapped[str | None] = mapped_column(
        ForeignKey("digital_humans.id", ondelete="SET NULL")
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # MCP tool servers: [{name, transport, command?, args?, env?, url?, headers?, tools?}]
    mcp_servers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)


class ConversationMessage(Base):
    __tablename__ = "conversation_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    conversation: Mapped[str] = mapped_column(String(200), index=True)  # "<channel>:<chat>:<user>"
    role: Mapped[str] = mapped_column(String(16))  # system | user | assistant | tool | summary
    content: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # tool calls, tool results
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- bot / channels ----------------------------------------------------------------------


class ChatBinding(TimestampMixin, Base):
    __tablename__ = "chat_bindings"
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(200))
    agent_name: Mapped[str] = mapped_column(String(64))
    digital_human_id: Mapped[str | None] = mapped_column(
        ForeignKey("digital_humans.id", ondelete="SET NULL")
    )


class ProcessedEvent(Base):
    """Inbox of platform events: the unique key makes a retried event a no-op, across restarts."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="received")  # received|done|failed
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Durable intake: the parsed message, written before the platform gets its 200/ack.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Delivery(Base):
    """Outbox: one reply a chat is owed (ack, progress card, text, media of a task).

    Rows of one `group_key` (one incoming event or schedule run) are sent in `seq` order;
    a row with a `task_id` waits for that task and then sends its media or its failure.
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("group_key", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(250))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    platform: Mapped[str] = mapped_column(String(16))
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kind: Mapped[str] = mapped_column(String(16))  # text|markdown|progress|video|audio|image
    text: Mapped[str] = mapped_column(Text, default="")
    path: Mapped[str | None] = mapped_column(String(500))
    task_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # upload keys, card handle
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --- scheduler ---------------------------------------------------------------------------


class Schedule(TimestampMixin, Base):
    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    agent: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(String(16), default="text")  # text | markdown | video
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ScheduleRun(Base):
    """One row per (schedule, fire time): the unique key lets only one replica fire it."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime] = mapped_column(UtcDateTime())
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|failed
    instance: Mapped[str] = mapped_column(String(200), default="")
    task_id: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --- plugins -----------------------------------------------------------------------------


class PluginState(TimestampMixin, Base):
    __tablename__ = "plugin_states"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(32), default="builtin")  # builtin|local|registry
    sha256: Mapped[str | None] = mapped_column(String(64))


# --- agents: knowledge base ----------------------------------------------------------------


class KnowledgeDocument(TimestampMixin, Base):
    """An uploaded document of one agent; its text lives in KnowledgeChunk rows."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (UniqueConstraint("agent_id", "filename"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # txt | md | pdf | docx
    size_bytes: Mapped[int] = mapped_column(Integer)
    chars: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))


class KnowledgeChunk(Base):
    """One overlapping passage of a document. `terms` is the search form of `content`
    (words and CJK bigrams), indexed by SQLite FTS5 or, on PostgreSQL, as `search_vector`."""

    __tablename__ = "knowledge_chunks"
    # GIN on PostgreSQL, without the pending list: with it, fresh rows are scanned linearly and
    # the planner shuns the index until a VACUUM. On SQLite the column stays NULL (FTS5 instead).
    __table_args__ = (
        Index(
            "ix_knowledge_chunks_search_vector",
            "search_vector",
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based passage number in the document
    content: Mapped[str] = mapped_column(Text)
    terms: Mapped[str] = mapped_column(Text)
    search_vector: Mapped[str | None] = mapped_column(
        Text().with_variant(TSVECTOR(), "postgresql"), deferred=True
    )


# --- chat channels: connection leases and reply feedback --------------------------------


class ChannelLease(Base):
    """Who holds a platform connection that must exist once (WeCom AI bot: one socket per bot)."""

    __tablename__ = "channel_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChatFeedback(Base):
    """A user's rating of a bot reply (WeCom AI bot feedback_event), stored raw."""

    __tablename__ = "chat_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    feedback_id: Mapped[str] = mapped_column(String(256), default="")
    user_id: Mapped[str] = mapped_column(String(200), default="")
    rating: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ChannelRelay(Base):
    """A push handed from a replica without the channel's connection to the one holding it."""

    __tablename__ = "channel_relay"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(200))
    chat_type: Mapped[str] = mapped_column(String(16), default="p2p")
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    media_path: Mapped[str | None] = mapped_column(Text)  # uploaded by the holder (shared DATA_DIR)
    media_type: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sending|done|failed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
