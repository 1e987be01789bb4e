"""Shared test helpers: fake chat platforms and a real uvicorn runner."""
