from __future__ import annotations

import pytest

from avatarbot.errors import AvatarbotError
from avatarbot.plugins.manager import PluginManager
from tests.helpers.plugin_factory import write_plugin


@pytest.fixture
def manager(tmp_path):
    mgr = PluginManager(tmp_path / "data", builtin_dir=None)
    yield mgr
    mgr.shutdown()


def test_cycle_reported_by_manager(manager):
    write_plugin(manager.plugins_dir, "a", dependencies=["b"])
    write_plugin(manager.plugins_dir, "b", dependencies=["a ^1"])
    ok, order, errors = manager.get_load_order()
    assert not ok and order == []
    assert "dependency cycle: a -> b -> a" in errors
    with pytest.raises(AvatarbotError, match=r"a -> b -> a"):
        manager.load_plugin("a")
    assert "a -> b -> a" in manager.last_error("a")
    results = manager.load_all()
    assert "a -> b -> a" in results["a"] and "a -> b -> a" in results["b"]


def test_unsatisfied_version_reported_and_dependencies_loaded_first(manager):
    write_plugin(manager.plugins_dir, "app", dependencies=["lib >=2,<3"])
    write_plugin(manager.plugins_dir, "lib", version="1.4")
    write_plugin(manager.plugins_dir, "top", dependencies=["mid ~1.0"])
    write_plugin(manager.plugins_dir, "mid", version="1.0.3", dependencies=["lib"])
    assert manager.check_dependencies("app") == (
        False,
        ["app requires lib >=2,<3, but lib 1.4 is installed"],
    )
    with pytest.raises(AvatarbotError, match=r"lib 1\.4 is installed"):
        manager.load_plugin("app")
    manager.load_plugin("top")  # pulls in mid and lib first
    assert {p.name for p in manager.list_plugins()} == {"top", "mid", "lib"}
    assert manager.get_dependency_tree("top") == {"top": ["mid"], "mid": ["lib"], "lib": []}
    write_plugin(manager.plugins_dir, "mid", version="1.1.0", dependencies=["lib >=2"])
    assert manager.reload_plugin("mid") is False
    assert "mid requires lib >=2" in manager.last_error("mid")
    assert manager.describe("mid")["version"] == "1.0.3"
    assert manager.unload_plugin("lib") is False
    assert "still needed by mid" in manager.last_error("lib")
    assert manager.unload_plugin("top") and manager.unload_plugin("mid")
    assert manager.unload_plugin("lib")


def test_tool_names_must_be_namespaced(manager):
    body = (
        "from avatarbot.plugins.base import Plugin\n"
        "from avatarbot.tools import ToolSpec\n"
        "class TestPlugin(Plugin):\n"
        "    def tools(self):\n"
        "        return [ToolSpec(name='ask', description='x', handler=lambda: 'x')]\n"
    )
    write_plugin(manager.plugins_dir, "sneaky", body=body)
    with pytest.raises(AvatarbotError, match=r"must be 'sneaky\.<tool>'"):
        manager.load_plugin("sneaky")
    assert manager.get_plugin("sneaky") is None


def test_required_config_blocks_load_until_set(manager):
    write_plugin(
        manager.plugins_dir,
        "keyed",
        config_schema={
            "api_key": {"type": "string", "required": True, "secret": True},
            "limit": {"type": "integer", "default": 5, "min": 1},
        },
    )
    with pytest.raises(AvatarbotError, match="api_key: required"):
        manager.load_plugin("keyed")
    shown = manager.set_config("keyed", {"api_key": "sk-123", "limit": 3})
    assert shown == {"api_key": "********", "limit": 3}
    plugin = manager.load_plugin("keyed")
    assert plugin.config.get("api_key") == "sk-123"
    assert (manager.config_dir / "keyed.json").is_file()
