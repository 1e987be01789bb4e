"""HTTP API: /api/v1 routers (one file per resource) and their shared dependencies."""
