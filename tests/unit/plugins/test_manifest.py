from __future__ import annotations

import json

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.plugins.manifest import load_manifest, parse_manifest


def test_yaml_and_json_manifests(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "plugin.yaml").write_text(
        "name: a\nversion: '1.2'\nentry_point: pkg.main:A\n"
        "dependencies: {b: '^1.0', c: ''}\ntools: [ask, {name: tell, description: Tell}]\n"
    )
    manifest = load_manifest(tmp_path / "a")
    assert manifest.module == "pkg.main" and manifest.class_name == "A"
    assert manifest.dependencies == ("b ^1.0", "c")
    assert [t.name for t in manifest.tools] == ["ask", "tell"]
    assert manifest.capability == "plugins"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "plugin.json").write_text(json.dumps(manifest.to_dict() | {"name": "b"}))
    assert load_manifest(tmp_path / "b").to_dict() == manifest.to_dict() | {"name": "b"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Bad-Name", "version": "1.0"}, "name must match"),
        ({"name": "ok", "version": "one"}, "not a valid version"),
        ({"name": "ok", "version": "1", "entry_point": "../evil:X"}, "entry_point"),
        ({"name": "ok", "version": "1", "config_schema": {"k": 3}}, "config_schema"),
        ({"name": "ok", "version": "1", "dependencies": [1]}, "dependencies"),
        ({"name": "ok", "version": "1", "tools": [{"description": "x"}]}, "tool needs a name"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_manifests(data, message):
    with pytest.raises(InvalidInput, match=message):
        parse_manifest(data)


def test_missing_manifest(tmp_path):
    with pytest.raises(InvalidInput, match="no plugin manifest"):
        load_manifest(tmp_path)
