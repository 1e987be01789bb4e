"""avatarbot: chat-bot agents for Feishu and WeCom that answer with talking digital-human videos."""

__version__ = "0.1.0"
