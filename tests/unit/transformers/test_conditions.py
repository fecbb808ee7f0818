"""The condition language (transformations.md §2.1, §2.2) as one table of
(condition, payload, metadata, expected)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dataflow_operator.transformers.conditions import Condition, problems
from dataflow_operator.transformers.jsonvalues import decode

NOT_JSON = "this is not json"

CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # §3.3 filter examples
    ("$.status != 'deleted'", '{"status":"active"}', {}, True),
    ("$.status != 'deleted'", '{"status":"deleted"}', {}, False),
    ("$.status != 'deleted'", "{}", {}, False),
    # truthiness
    ("$.active", '{"active":true}', {}, True),
    ("$.active", '{"active":false}', {}, False),
    ("$.active", "{}", {}, False),
    ("$.active", '{"active":""}', {}, False),
    ("$.active", '{"active":0}', {}, False),
    ("$.active", '{"active":0.0}', {}, False),
    ("$.active", '{"active":null}', {}, False),
    ("$.active", '{"active":"false"}', {}, False),
    ("$.active", '{"active":{}}', {}, True),
    ("$.active", '{"active":[]}', {}, True),
    ("$.active", '{"active":"0"}', {}, True),
    ("$.active", '{"active":"False"}', {}, True),
    ("$.active", '{"active":0.5}', {}, True),
    ("$.active", '{"active":-1}', {}, True),
    ("$.a.b", '{"a":{"b":"yes"}}', {}, True),
    ("$.a.b", '{"a":"b"}', {}, False),
    # textual comparison
    ("$.n == 5", '{"n":5}', {}, True),
    ("$.n == '5'", '{"n":5}', {}, True),
    ("$.n == 5.0", '{"n":5}', {}, False),
    ("$.n == 5", '{"n":5.0}', {}, True),
    ("$.n == 10.5", '{"n":10.50}', {}, True),
    ("$.n == 1000", '{"n":1e3}', {}, True),
    ("$.n == 9007199254740993", '{"n":9007199254740993}', {}, True),
    ("$.x == ''", '{"x":null}', {}, True),
    ("$.x != 'a'", '{"x":null}', {}, True),
    ("$.x != 'a'", "{}", {}, False),
    ("$.x == 'a'", "{}", {}, False),
    ("$.b == true", '{"b":true}', {}, True),
    ("$.b == True", '{"b":true}', {}, False),
    ("$.a == 'A'", '{"a":"a"}', {}, False),
    ("$.o == '{\"k\":1}'", '{"o":{"k": 1}}', {}, True),
    ("$.o == '[1,2]'", '{"o":[1, 2]}', {}, True),
    # operator detection
    ("$.n ==5", '{"n":5}', {}, False),
    ("$.a=='x'", '{"a":"x"}', {}, True),
    ("$.a!='x'", '{"a":"y"}', {}, True),
    ("$.a!=x", '{"a":"y"}', {}, False),
    ("$.a ==  'x'", '{"a":"x"}', {}, True),
    ("$.a != 'x' == 'y'", '{"a":"y"}', {}, True),
    # literals
    ('$.a == "x"', '{"a":"x"}', {}, True),
    ("$.a == x", '{"a":"x"}', {}, True),
    ("$.a == active trailing", '{"a":"active"}', {}, True),
    ("$.a == 'unterminated", '{"a":""}', {}, True),
    ("$.a == 'it\\'s'", '{"a":"it\\\\\'s"}', {}, True),
    ("$.a ==", '{"a":""}', {}, True),
    ("$.a == 'x && y'", '{"a":"x && y"}', {}, True),
    ("$.a == 'x || y'", '{"a":"x || y"}', {}, True),
    ("$.a == '(b)'", '{"a":"(b)"}', {}, True),
    ("$.a == \"it's\"", '{"a":"it\'s"}', {}, True),
    # paths
    ("$.user.name == 'J'", '{"user":{"name":"J"}}', {}, True),
    ("$.items.0 == 'a'", '{"items":["a","b"]}', {}, True),
    ("$.items[1] == 'b'", '{"items":["a","b"]}', {}, True),
    ("$.items.# == 2", '{"items":["a","b"]}', {}, True),
    ("$.items.#.id == '[1,2]'", '{"items":[{"id":1},{"id":2}]}', {}, True),
    ("$.a\\.b == 1", '{"a.b":1}', {}, True),
    ("a == 1", '{"a":1}', {}, True),
    ("$", '{"a":1}', {}, False),
    ("$.metadata.x == 1", '{"metadata":{"x":1}}', {"x": 2}, True),
    ("$.a", "[1,2]", {}, False),
    ("$.0", "[1,2]", {}, True),
    # && || ! ()
    ("$.a == 1 && $.b == 2", '{"a":1,"b":2}', {}, True),
    ("$.a == 1 && $.b == 2", '{"a":1,"b":3}', {}, False),
    ("$.a == 1 || $.b == 2", '{"a":0,"b":2}', {}, True),
    ("$.a == 1 || $.b == 2", '{"a":0,"b":0}', {}, False),
    ("$.a || $.b && $.c", '{"a":false,"b":true,"c":false}', {}, False),
    ("$.a || $.b && $.c", '{"a":true}', {}, True),
    ("($.a || $.b) && $.c", '{"a":true,"c":false}', {}, False),
    ("($.a || $.b) && $.c", '{"b":true,"c":true}', {}, True),
    ("(($.a))", '{"a":true}', {}, True),
    ("!$.deleted", '{"deleted":false}', {}, True),
    ("!$.deleted", "{}", {}, True),
    ("!$.deleted", '{"deleted":true}', {}, False),
    ("! $.deleted", '{"deleted":true}', {}, False),
    ("!!$.a", '{"a":true}', {}, True),
    ("!($.a == 'x')", '{"a":"x"}', {}, False),
    ("!($.a == 'x')", '{"a":"y"}', {}, True),
    ("!$.s == 'x'", '{"s":"y"}', {}, True),
    ("!$.s == 'x'", "{}", {}, True),
    ("!= 'x'", '{"":"y"}', {}, False),
    ("$.a == 'x' || ($.b == 'y' && !$.c)", '{"b":"y"}', {}, True),
    ("$.a == 'x' || ($.b == 'y' && !$.c)", '{"b":"y","c":1}', {}, False),
    ("$.level == 'error' && metadata.topic == 'orders'", '{"level":"error"}', {"topic": "orders"}, True),
    # malformed text evaluates to false
    ("", "{}", {}, False),
    ("   ", "{}", {}, False),
    ("($.a", '{"a":true}', {}, False),
    ("($.a || $.b", '{"a":true}', {}, False),
    ("$.a && ($.b", '{"a":true,"b":true}', {}, False),
    ("$.a ||", '{"a":true}', {}, True),
    ("$.a &&", '{"a":true}', {}, False),
    # metadata
    ("metadata.topic == 'orders'", "{}", {"topic": "orders"}, True),
    ("metadata.topic == 'orders'", "{}", {"topic": "other"}, False),
    ("metadata.topic", "{}", {}, False),
    ("metadata.topic != 'x'", "{}", {}, False),
    ("metadata.topic", "{}", {"topic": None}, False),
    ("metadata.partition == 3", "{}", {"partition": 3}, True),
    ("metadata.partition", "{}", {"partition": 0}, False),
    ("metadata.flag", "{}", {"flag": False}, False),
    ("metadata.flag", "{}", {"flag": "false"}, False),
    ("metadata.flag", "{}", {"flag": "yes"}, True),
    ("metadata.flag == true", "{}", {"flag": True}, True),
    ("metadata.key == 'k1'", "{}", {"key": b"k1"}, True),
    ("metadata.ts == '2024-01-15T08:00:07.486Z'", "{}",
     {"ts": datetime(2024, 1, 15, 8, 0, 7, 486000, tzinfo=UTC)}, True),
    ("metadata.key.with.dots == 'v'", "{}", {"key.with.dots": "v"}, True),
    ("metadata.headers", "{}", {"headers": {}}, True),
    # non-JSON payloads: payload paths are missing, metadata still works
    ("$.a", NOT_JSON, {}, False),
    ("!$.a", NOT_JSON, {}, True),
    ("$.a != 'x'", NOT_JSON, {}, False),
    ("metadata.topic == 't'", NOT_JSON, {"topic": "t"}, True),
]


@pytest.mark.parametrize(("text", "payload", "metadata", "expected"), CASES)
def test_condition(text: str, payload: str, metadata: dict[str, Any], expected: bool) -> None:
    condition = Condition(text)
    assert condition.evaluate(decode(payload.encode()), metadata) is expected


def test_metadata_only_condition_does_not_read_the_payload() -> None:
    assert Condition("metadata.topic == 'x'").needs_payload is False
    assert Condition("metadata.topic == 'x' && $.a").needs_payload is True


@pytest.mark.parametrize("text", [
    "$.a", "$.a == 'x'", "!$.a", "($.a || $.b) && !$.c", "$.a == 'x && y'", "metadata.topic == t",
    "$.n ==5", "$.a == 'it\\'s'",
])
def test_well_formed_conditions_have_no_problems(text: str) -> None:
    assert problems(text) == []


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty condition"),
    ("($.a", "unbalanced parentheses"),
    ("$.a)", "unbalanced parentheses"),
    ("$.a && ", "empty operand"),
    ("|| $.a", "empty operand"),
    ("!", "empty operand"),
    ("$.a == 'x", "unterminated quote"),
    ("($.a) $.b", "unexpected text after ')'"),
    ("== 'x'", "missing path"),
    ("(" * 70 + "$.a" + ")" * 70, "nested too deeply"),
])
def test_problems_name_what_is_wrong(text: str, problem: str) -> None:
    assert any(problem in found for found in problems(text))
