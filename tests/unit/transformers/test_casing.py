"""snakeCase / camelCase (transformations.md §3.8, §3.9)."""

from __future__ import annotations

from typing import Any

import pytest

from dataflow_operator.transformers.casing import to_pascal, to_snake

from .helpers import PASS, build, check, message

SNAKE = [
    ("firstName", "first_name"), ("FirstName", "first_name"), ("UserID", "user_id"),
    ("userID123", "user_id123"), ("XMLHttpRequest", "xml_http_request"), ("XMLParser", "xml_parser"),
    ("USERNAME", "username"), ("item2Name", "item2_name"), ("ABc", "a_bc"), ("Foo_Bar", "foo_bar"),
    ("_Foo", "_foo"), ("first_name", "first_name"), ("a-Bc", "a-bc"), ("a Bc", "a bc"), ("", ""),
    ("ÄpfelBirne", "äpfel_birne"), ("id", "id"),
]
PASCAL = [
    ("first_name", "FirstName"), ("name", "Name"), ("id", "Id"), ("user_id_123", "UserId123"),
    ("name_", "Name"), ("_name", "Name"), ("user__name", "UserName"), ("username", "Username"),
    ("FirstName", "FirstName"), ("firstName", "FirstName"), ("XML_http", "XMLHttp"), ("", ""),
    ("___", "___"), ("é_b", "ÉB"),
]


@pytest.mark.parametrize(("key", "expected"), SNAKE)
def test_snake_case_key(key: str, expected: str) -> None:
    assert to_snake(key) == expected


@pytest.mark.parametrize(("key", "expected"), PASCAL)
def test_camel_case_key(key: str, expected: str) -> None:
    assert to_pascal(key) == expected


CASES: list[tuple[str, dict[str, Any] | None, str, Any]] = [
    ("snakeCase", None, '{"firstName":"A","nestedObj":{"innerKey":1}}',
     [{"first_name": "A", "nested_obj": {"innerKey": 1}}]),
    ("snakeCase", {"deep": True}, '{"firstName":"A","nestedObj":{"innerKey":1}}',
     [{"first_name": "A", "nested_obj": {"inner_key": 1}}]),
    ("snakeCase", {"deep": True}, '{"listOf":[{"aB":1},[{"cD":2}],3]}',
     [{"list_of": [{"a_b": 1}, [{"c_d": 2}], 3]}]),
    ("snakeCase", {}, '[{"aB":1}]', PASS),
    ("snakeCase", {"deep": True}, '[{"aB":1}]', [[{"a_b": 1}]]),
    ("snakeCase", {}, '"someString"', PASS),
    ("snakeCase", {"deep": True}, "42", PASS),
    ("snakeCase", {}, "not json", PASS),
    ("snakeCase", {}, '{"userName":"JohnDoe"}', [{"user_name": "JohnDoe"}]),
    ("snakeCase", {}, '{"userId":1,"user_id":2}', [{"user_id": 2}]),
    ("camelCase", {}, '{"first_name":"A","nested_obj":{"inner_key":1}}',
     [{"FirstName": "A", "NestedObj": {"inner_key": 1}}]),
    ("camelCase", {"deep": True}, '{"first_name":"A","nested_obj":{"inner_key":[{"x_y":1}]}}',
     [{"FirstName": "A", "NestedObj": {"InnerKey": [{"XY": 1}]}}]),
    ("camelCase", {}, '{"user_id":1,"UserId":2}', [{"UserId": 2}]),
    ("camelCase", {}, "not json", PASS),
    ("camelCase", {}, "{}", [{}]),
]


@pytest.mark.parametrize(("type_", "config", "data", "expected"), CASES)
def test_key_case_transform(type_: str, config: dict[str, Any] | None, data: str, expected: Any) -> None:
    check(build(type_, config), data, expected)


def test_key_case_keeps_values_and_order() -> None:
    out = build("snakeCase", {}).transform(message('{"zKey":"aValue","aKey":1.0}'))
    assert out[0].data == b'{"z_key":"aValue","a_key":1.0}'
