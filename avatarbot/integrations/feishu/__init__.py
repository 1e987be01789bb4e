"""Feishu (Lark) channel: event crypto and parsing, API client, webhook, long connection."""
