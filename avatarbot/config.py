"""Settings: one object, read from the environment (prefix AVATARBOT_, nested `__`), `.env` and YAML.

The object is created once and passed in; a config reload builds a new object and swaps it
only after it validated (see ConfigManager).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

logger = logging.getLogger(__name__)

DEFAULT_YAML_PATH = Path("config/avatarbot.yaml")


class AuthSettings(BaseModel):
    secret_key: SecretStr | None = None  # generated and stored under DATA_DIR on first run if unset
    open_registration: bool = False
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    login_attempts_per_minute: int = 10


class FeishuSettings(BaseModel):
    app_id: str = ""
    app_secret: SecretStr = SecretStr("")
    verification_token: SecretStr = SecretStr("")
    encrypt_key: SecretStr = SecretStr("")
    base_url: str = "https://open.feishu.cn"
    mode: Literal["webhook", "long_connection"] = "webhook"
    # Agent answers stream into a CardKit card (needs the cardkit:card:write scope); when the
    # platform refuses, the answer goes as one plain message.
    streaming: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.app_secret.get_secret_value())


class WecomSettings(BaseModel):
    corp_id: str = ""
    agent_id: str = ""
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    base_url: str = "https://qyapi.weixin.qq.com"

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id and self.secret.get_secret_value())


class WecomBotSettings(BaseModel):
    """The WeCom AI bot (智能机器人): a long connection (default) or an encrypted webhook."""

    mode: Literal["long_connection", "webhook"] = "long_connection"
    bot_id: str = ""
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    ws_url: str = "wss://openws.work.weixin.qq.com"
    # Timing knobs (WeCom's own figures as defaults; tests shrink them).
    ping_interval_s: float = 30.0  # two unanswered pings = a dead link
    backoff_max_s: float = 30.0  # reconnect after 1, 2, 4 ... s, at most this
    lease_ttl_s: float = 30.0  # one connection per bot across replicas (a DB lease)
    stream_max_s: float = 330.0  # finish a stream before WeCom's 6-minute window closes
    welcome: str = "Hello! Ask me anything, or send /video <text>. /help lists the commands."

    @property
    def enabled(self) -> bool:
        if self.mode == "webhook":
            return bool(self.token.get_secret_value() and self.encoding_aes_key.get_secret_value())
        return bool(self.bot_id and self.secret.get_secret_value())


class LLMSettings(BaseModel):
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    model: str = ""
    timeout_s: float = 60.0
    max_tool_steps: int = 6

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)


class PipelineSettings(BaseModel):
    default_mode: str = "talking_head"
    video_size: int = 512
    tts_backend: str = "auto"
    animator_backend: str = "auto"
    enhancer_backend: str = "auto"
    # auto: crop head and shoulders when the face is small; full: whole picture; portrait: crop
    framing: Literal["auto", "full", "portrait"] = "auto"
    max_text_chars: int = 5000
    max_upload_mb: int = 20
    max_image_megapixels: int = 40  # checked from the header, before an image is decoded
    # Processes that draw a procedural clip's frames: 2 forks a helper for every second frame
    # (where the machine has two cores); 1 draws them all in the rendering process.
    render_processes: int = Field(2, ge=1, le=2)
    commercial_use: bool = False  # refuse non-commercial model licences when true
    device: str = "auto"  # neural backends: auto (cuda -> mps -> cpu) | cpu | cuda | cuda:N | mps
    model_memory_gb: float = 4.0  # loaded networks kept per process (LRU) up to this size
    wav2lip_checkpoint: str = ""
    gfpgan_checkpoint: str = ""
    sadtalker_dir: str = ""
    piper_voice: str = ""
    xtts_model_dir: str = ""
    openai_tts_base_url: str = ""
    openai_tts_api_key: SecretStr = SecretStr("")
    openai_tts_model: str = "tts-1"


class JobSettings(BaseModel):
    local_workers: int = 1
    task_time_limit_s: int = 1800
    max_attempts: int = 3
    # Celery workers (AVATARBOT_REDIS_URL set): an unacked message returns to the queue after
    # visibility_timeout_s; a running task whose heartbeat is older than heartbeat_timeout_s
    # belongs to a dead worker and is re-queued (or failed) by the sweeper.
    visibility_timeout_s: int = 3600
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 60.0
    sweep_interval_s: float = 30.0


class KnowledgeSettings(BaseModel):
    """Per-agent knowledge base limits (uploads are refused beyond them with 413)."""

    max_document_mb: int = 20
    max_agent_mb: int = 200  # all documents of one agent together
    max_chunks_per_document: int = 5000
    chunk_chars: int = 800
    chunk_overlap: int = 120
    # Chat users may add a file they sent to the chat agent's knowledge base with /kb (agents
    # with the `knowledge` capability only); false keeps uploads to the API and console.
    chat_uploads: bool = True


class McpSettings(BaseModel):
    # Executables that agents' stdio MCP servers may run, comma-separated (names or absolute
    # paths); empty means no stdio servers at all, so an agent cannot start arbitrary programs.
    allowed_commands: str = ""
    call_timeout_s: float = 30.0
    connect_timeout_s: float = 20.0

    @field_validator("allowed_commands", mode="before")
    @classmethod
    def _commands_list(cls, value: Any) -> Any:
        return ",".join(str(v) for v in value) if isinstance(value, list | tuple) else value

    @property
    def allowed_command_list(self) -> list[str]:
        return [c.strip() for c in self.allowed_commands.split(",") if c.strip()]


class BotSettings(BaseModel):
    user_messages_per_minute: int = 20
    max_user_media_mb: int = 20  # photos, voice and files users send: download stops here
    # Outbox (replies owed to chats): retried with exponential backoff across restarts until
    # sent, out of attempts, or older than delivery_max_age_s.
    delivery_max_attempts: int = 10
    delivery_backoff_s: float = 2.0
    delivery_backoff_max_s: float = 300.0
    delivery_max_age_s: float = 86400.0
    # How often the outbox and the inbox recovery look for work another process left.
    recover_interval_s: float = 5.0


class AsrSettings(BaseModel):
    """OpenAI-compatible speech-to-text (POST {base_url}/audio/transcriptions) for voice messages."""

    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    model: str = "whisper-1"
    timeout_s: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class SchedulerSettings(BaseModel):
    # Robot/webhook targets must be https on a public address unless this is set (a LAN-only
    # deployment with an internal robot relay); otherwise schedules could probe the server's network.
    allow_private_urls: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AVATARBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: Literal["dev", "prod", "test"] = "dev"
    database_url: str = "sqlite+aiosqlite:///./data/avatarbot.db"
    redis_url: str | None = None
    data_dir: Path = Path("./data")
    public_base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    cors_origins: list[str] = Field(default_factory=list)
    config_file: Path | None = None  # optional YAML file with the same keys (lower case, nested)

    auth: AuthSettings = Field(default_factory=AuthSettings)
    feishu: FeishuSettings = Field(default_factory=FeishuSettings)
    wecom: WecomSettings = Field(default_factory=WecomSettings)
    wecom_bot: WecomBotSettings = Field(default_factory=WecomBotSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    mcp: McpSettings = Field(default_factory=McpSettings)

    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    asr: AsrSettings = Field(default_factory=AsrSettings)

    # Keyword arguments given in code (tests, CLI flags): re-applied on every reload.
    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._overrides = dict(values)

    def reloaded(self) -> Settings:
        """A fresh copy read again from env/.env/YAML, with the same code-given overrides."""
        return type(self)(**self._overrides)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value: Any) -> Any:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit kwargs > environment > .env > YAML file.
        return (init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls))

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def plugins_dir(self) -> Path:
        return self.data_dir / "plugins"

    def secret_key(self) -> str:
        """The JWT signing key: configured, or generated once and kept in DATA_DIR/secret_key."""
        if self.auth.secret_key is not None and self.auth.secret_key.get_secret_value():
            return self.auth.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written with 0600 so other local users cannot forge tokens.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.media_dir, self.models_dir, self.plugins_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.database_url.startswith("sqlite") and ":///" in self.database_url:
            db_path = self.database_url.split(":///", 1)[1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)


class _YamlSource(PydanticBaseSettingsSource):
    """Reads `config_file` (env AVATARBOT_CONFIG_FILE) or config/avatarbot.yaml when present."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        # The sources before this one (kwargs, environment, .env) have already been read: a
        # config_file named in .env counts too, not only AVATARBOT_CONFIG_FILE in the environment.
        path_value = self.current_state.get("config_file") or os.environ.get(
            "AVATARBOT_CONFIG_FILE"
        )
        path = Path(path_value) if path_value else DEFAULT_YAML_PATH
        if not path.is_file():
            return {}
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return data


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


class ConfigManager:
    """Holds the current Settings and swaps in a re-read copy on reload, only if it validates.

    Listeners are told about a successful reload (e.g. to update log level). Parts of the
    running app that hold sockets or pools (database URL, redis URL) keep their connections;
    the reload answer says which changed keys need a restart.
    """

    RESTART_KEYS = ("database_url", "redis_url", "data_dir", "host", "port")

    def __init__(self, settings: Settings, loader: Callable[[], Settings] | None = None) -> None:
        self._settings = settings
        self._loader = loader or settings.reloaded
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Settings], None]] = []

    @property
    def settings(self) -> Settings:
        return self._settings

    def add_listener(self, listener: Callable[[Settings], None]) -> None:
        self._listeners.append(listener)

    def reload(self) -> dict[str, Any]:
        """Re-read env/.env/YAML. Raises ValueError (old config kept) when the new one is invalid."""
        try:
            new = self._loader()
        except Exception as exc:  # pydantic ValidationError, YAML errors
            logger.warning("config reload rejected, keeping the old config: %s", _safe_error(exc))
            raise ValueError(f"invalid configuration, old config kept: {_safe_error(exc)}") from exc
        with self._lock:
            old = self._settings
            self._settings = new
        changed = sorted(
            key for key in Settings.model_fields if getattr(old, key) != getattr(new, key)
        )
        for listener in self._listeners:
            listener(new)
        logger.info("config reloaded; changed sections: %s", ", ".join(changed) or "none")
        return {
            "reloaded": True,
            "changed": changed,
            "restart_required": [k for k in changed if k in self.RESTART_KEYS],
        }


def _safe_error(exc: Exception) -> str:
    # pydantic errors can echo input values (possibly secrets): keep only locations and messages.
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                for e in errors()
            )
        except Exception:  # noqa: S110 - fall through to the type name
            pass
    return type(exc).__name__
