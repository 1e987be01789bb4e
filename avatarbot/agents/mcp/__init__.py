"""MCP (Model Context Protocol) tool servers for agents, on the official `mcp` SDK.

servers.py: the per-agent `mcp_servers` setting (validation, stdio allowlist, masking);
connection.py: one live server; pool.py: the process's connections and their tools;
schemas.py: per-tool checks of a server's tool list; results.py: what a call gives back.
The SDK is imported only when a server is used, keeping `import avatarbot` fast.
"""
