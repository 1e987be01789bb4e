"""WeCom (WeChat Work) channel: callback crypto, XML parsing, API client, webhook, group robots."""
