from __future__ import annotations

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.plugins.dependency import DependencyResolver, PluginDependency


@pytest.mark.parametrize(
    ("constraint", "inside", "outside"),
    [
        ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.0"]),
        ("~1", ["1.0", "1.9.9"], ["2.0"]),
        (">=2,<3", ["2.0", "2.9.1"], ["1.4", "3.0"]),
        (">=1.0 <2.0", ["1.5"], ["2.0"]),
        ("1.2 - 2.0", ["1.2", "2.0"], ["2.0.1", "1.1"]),
        ("==1.4", ["1.4", "1.4.0"], ["1.4.1"]),
        ("1.4", ["1.4"], ["1.5"]),
        ("^1 || ^3", ["1.5", "3.1"], ["2.0"]),
        ("", ["0.1", "99.0"], []),
        ("~=1.2", ["1.3"], ["2.0"]),
    ],
)
def test_constraints(constraint, inside, outside):
    dep = PluginDependency.parse(f"other {constraint}")
    assert dep.name == "other"
    for version in inside:
        assert dep.check_version(version), (constraint, version)
    for version in outside:
        assert not dep.check_version(version), (constraint, version)


def test_invalid_constraint_and_version():
    with pytest.raises(InvalidInput):
        PluginDependency.parse("other >>>1")
    assert not PluginDependency.parse("other >=1").check_version("not-a-version")


def test_cycle_is_reported_with_its_path():
    resolver = DependencyResolver()
    resolver.add_plugin("a", "1.0", ["b"])
    resolver.add_plugin("b", "1.0", ["a >=1"])
    resolver.add_plugin("c", "1.0", [])
    ok, order, errors = resolver.resolve_load_order()
    assert not ok
    assert "dependency cycle: a -> b -> a" in errors
    assert order == ["c"]
    ok, errors = resolver.check_dependencies("b")
    assert not ok and "dependency cycle: a -> b -> a" in errors


def test_unsatisfied_range_is_reported():
    resolver = DependencyResolver()
    resolver.add_plugin("app", "1.0", ["lib >=2,<3"])
    resolver.add_plugin("lib", "1.4", [])
    ok, errors = resolver.check_dependencies("app")
    assert not ok
    assert errors == ["app requires lib >=2,<3, but lib 1.4 is installed"]
    ok, order, errors = resolver.resolve_load_order()
    assert order == ["lib"] and "app requires lib >=2,<3, but lib 1.4 is installed" in errors


def test_load_order_and_tree():
    resolver = DependencyResolver()
    resolver.add_plugin("top", "1.0", ["mid ^1", "base"])
    resolver.add_plugin("mid", "1.3", ["base ~2.1"])
    resolver.add_plugin("base", "2.1.5", [])
    resolver.add_plugin("needs_missing", "1.0", ["ghost"])
    resolver.add_plugin("above_missing", "1.0", ["needs_missing"])
    _ok, order, errors = resolver.resolve_load_order()
    assert order == ["base", "mid", "top"]
    assert any("ghost" in e for e in errors)
    assert any(e.startswith("above_missing") for e in errors)
    assert resolver.get_dependency_tree("top") == {
        "top": ["mid", "base"],
        "mid": ["base"],
        "base": [],
    }
