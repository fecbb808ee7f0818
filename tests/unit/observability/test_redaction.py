"""The registry removes every registered value, longest first, as a plain alternation would."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from dataflow_operator.observability.redaction import REDACTED, SecretRegistry, register_secrets, scrub, scrub_value

values = st.text(alphabet="ab?@%'\\ \n", min_size=1, max_size=6)


@given(st.sets(values, min_size=1, max_size=8), st.lists(st.one_of(values, st.text(max_size=4)), max_size=8))
def test_every_occurrence_of_every_form_is_redacted_overlaps_included(secrets: set[str], parts: list[str]) -> None:
    registry = SecretRegistry()
    registry.add(secrets)
    text = "".join(parts)
    forms = registry._values
    if not forms:  # blank secrets are never registered
        assert registry.scrub(text) == text
        return
    # The reference, by brute force: every place any form occurs, overlapping places joined into one.
    spans: list[list[int]] = []
    for start, end in sorted((i, i + len(form)) for form in forms for i in range(len(text))
                             if text.startswith(form, i)):
        if spans and start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    expected, last = "", 0
    for start, end in spans:
        expected, last = expected + text[last:start] + REDACTED, end
    assert registry.scrub(text) == expected + text[last:]


def test_quoted_forms_are_removed_too() -> None:
    register_secrets(["p@ss w'rd\n"])
    for text in ("p@ss w'rd\n", "p%40ss%20w%27rd%0A", "p%40ss+w%27rd%0A", "p@ss w'rd\\n", "p@ss w\\'rd\\n"):
        assert scrub(f"<{text}>") == f"<{REDACTED}>", text


def test_blank_values_are_never_registered() -> None:
    register_secrets(["", "  ", "\n"])
    assert scrub("a  b\n") == "a  b\n"


def test_scrub_value_walks_containers_and_keys() -> None:
    register_secrets(["hunter2"])
    when = datetime(2024, 1, 1, tzinfo=UTC)
    scrubbed = scrub_value({"hunter2": ["x hunter2", ("hunter2", 3)], "n": None, "when": when,
                            "error": ValueError("bad hunter2")})
    assert scrubbed == {REDACTED: [f"x {REDACTED}", (REDACTED, 3)], "n": None, "when": when,
                        "error": f"bad {REDACTED}"}
