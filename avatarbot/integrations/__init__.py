"""Chat platforms (Feishu/Lark, WeCom): wire formats, crypto, API clients, webhooks.

Everything platform-specific lives here; bot/ only sees IncomingMessage, Reply and the
ChannelSender protocol. Platform SDKs (lark_oapi, wechatpy) are imported lazily.
"""
