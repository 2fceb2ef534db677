"""The rules of dbconnmgr.app_settings, as data, each alone (the schema is tested in
tests/test_settings_checks.py)."""

from __future__ import annotations

import pytest

from dbconnmgr.app_settings import SCHEMA, Boolean, Choice, ListOf, MappingOf, Number, Problem

pytestmark = pytest.mark.engine_neutral


def messages(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.check_id, p.message) for p in problems]


def test_number_states_its_bounds_unit_and_none() -> None:
    rule = Number("x.E1", 0, 10, above=True, none_ok=True, unit="days")
    assert rule("N", 5) == [] and rule("N", None) == [] and rule("N", 10) == []
    assert messages(rule("N", 0)) == [("x.E1", "N must be days above 0 to 10 or None, got 0.")]
    assert rule("N", True) and rule("N", float("inf")) and rule("N", "5")
    assert Number("x.E1", 1, 3, whole=True)("N", 2.5)[0].message.startswith(
        "N must be a whole number from 1 to 3"
    )


def test_boolean_and_choice() -> None:
    assert Boolean("x.E2")("B", None) and not Boolean("x.E2", none_ok=True)("B", None)
    assert messages(Choice("x.E3", ("a", "b"))("C", "z")) == [
        ("x.E3", "C must be one of a, b, got 'z'.")
    ]
    assert Choice("x.E3", ("a", "b"))("C", None) == []


def test_list_of_checks_the_type_each_item_and_the_whole() -> None:
    def item(name: str, value: object) -> list[Problem]:
        return [] if isinstance(value, int) else [Problem("x.E4", f"{name} holds {value!r}.")]

    def whole(name: str, value: list[object]) -> list[Problem]:
        return [Problem("x.W4", f"{name} is long.")] if len(value) > 2 else []

    rule = ListOf("x.E4", item=item, then=whole, shown=lambda v: type(v).__name__)
    assert messages(rule("L", "ab")) == [("x.E4", "L must be a list, got str.")]
    assert messages(rule("L", [1, "a", 3])) == [("x.E4", "L holds 'a'."), ("x.W4", "L is long.")]
    assert rule("L", None) == [] and ListOf("x.E4", none_ok=False)("L", None)


def test_mapping_of_keys_required_and_unknown() -> None:
    rule = MappingOf(
        "x.E5", keys={"A": Number("x.E5", 0, 1), "B": Boolean("x.E5")}, required={"A": "number"}
    )
    assert messages(rule("M", [])) == [("x.E5", "M must be a dict, got list.")]
    found = rule("M", {"B": 1, "C": 0})
    assert messages(found) == [
        ("x.E5", "Unknown key 'C' in M."),
        ("x.E5", "M has no 'A' number."),
        ("x.E5", "M['B'] must be True or False, got 1."),
    ]
    assert found[0].hint == "Known keys: A, B."


def test_every_schema_key_accepts_its_default() -> None:
    for key, setting in SCHEMA.items():
        assert setting.validate(setting.default) == [], key
