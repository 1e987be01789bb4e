"""docker-compose.yml's `scale` profile: 2 API replicas behind one port, on one DB and Redis.

Docker cannot run here; this checks the file parses and that the example is wired as the
README says (the replicas' behaviour itself is tests/e2e/test_replicas.py).
"""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def test_scale_profile_puts_two_api_replicas_behind_one_port() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    api, replica, lb = services["api"], services["api-2"], services["lb"]
    assert replica["profiles"] == ["scale"] and lb["profiles"] == ["scale"]
    assert "profiles" not in api and "profiles" not in services["worker"]  # default stack
    # Same database, Redis and media volume as the first replica and the workers.
    for key in ("AVATARBOT_DATABASE_URL", "AVATARBOT_REDIS_URL", "AVATARBOT_DATA_DIR"):
        assert replica["environment"][key] == api["environment"][key]
        assert services["worker"]["environment"][key] == api["environment"][key]
    assert replica["volumes"] == api["volumes"]
    assert "ports" not in replica  # only through the proxy
    assert replica["depends_on"]["api"] == {"condition": "service_healthy"}
    assert lb["ports"] == ["8080:8080"]
    config = compose["configs"][lb["configs"][0]["source"]]["content"]
    assert "server api:8000;" in config and "server api-2:8000;" in config
    assert "listen 8080;" in config and "Upgrade $$http_upgrade" in config  # WebSockets
