"""AdmissionReview in, AdmissionReview out: the verdicts of ``validate``, warnings, no secrets."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.cli import main
from dataflow_operator.operator.webhook.review import MAX_CAUSES, BadReviewError, answer
from dataflow_operator.operator.webhook.server import MAX_REVIEW_BYTES
from tests.fuzz.manifest_mutations import mutate_document
from tests.unit.operator.webhook.reviews import body, example_dataflows, hostile_dataflows, review

HOSTILE = hostile_dataflows()
EXAMPLES = example_dataflows()

VALID: dict[str, Any] = {
    "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
    "metadata": {"name": "orders", "namespace": "team-a", "uid": "0b2c", "generation": 1,
                 "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}]},
    "spec": {"source": {"type": "kafka", "config": {"brokers": ["kafka:9092"], "topic": "orders"}},
             "sink": {"type": "file", "config": {"path": "/tmp/out.jsonl"}}},
}


def response_to(obj: Any, **kwargs: Any) -> dict[str, Any]:
    sent = review(obj, **kwargs)
    answered = answer(json.dumps(sent).encode())
    assert answered["apiVersion"] == "admission.k8s.io/v1" and answered["kind"] == "AdmissionReview"
    assert answered["response"]["uid"] == sent["request"]["uid"]
    result: dict[str, Any] = answered["response"]
    return result


def test_the_corpus_reaches_the_webhook() -> None:
    assert len(HOSTILE) >= 25  # most of the corpus is JSON-shaped; the rest fails at YAML loading


@pytest.mark.parametrize(("name", "document", "expect"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_manifests_are_refused_at_their_field(name: str, document: Any, expect: list[str]) -> None:
    response = response_to(document)
    assert response["allowed"] is False
    status = response["status"]
    assert (status["code"], status["reason"], status["status"]) == (422, "Invalid", "Failure")
    fields = [cause["field"] for cause in status["details"]["causes"]]
    for expected in expect:
        assert any(field == expected or field.startswith((f"{expected}.", f"{expected}[")) for field in fields), \
            (fields, expect)
    for cause in status["details"]["causes"]:
        assert f"{cause['field']}: {cause['message']}" in status["message"]


@pytest.mark.parametrize(("name", "document", "expect"), HOSTILE[:10], ids=[case[0] for case in HOSTILE[:10]])
def test_the_messages_are_those_of_validate(tmp_path: Any, name: str, document: Any, expect: list[str]) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(document))
    output = CliRunner().invoke(main, ["validate", str(path)]).output
    printed = {line.split(": ", 1)[1] for line in output.splitlines() if ": " in line}
    causes = response_to(document)["status"]["details"]["causes"]
    assert {f"{cause['field']}: {cause['message']}" for cause in causes} <= printed


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[case[0] for case in EXAMPLES])
def test_examples_are_admitted(name: str, document: dict[str, Any]) -> None:
    response = response_to(document)
    assert response["allowed"] is True and "status" not in response


@pytest.mark.parametrize("dry_run", [False, True])
def test_apiserver_fields_and_dry_run_are_admitted(dry_run: bool) -> None:
    response = response_to(VALID, dry_run=dry_run)
    assert response == {"uid": response["uid"], "allowed": True}


def test_warnings_for_ignored_fields() -> None:
    obj = copy.deepcopy(VALID)
    obj["spec"].update(checkpointSaveInterval="10s", processorImage="registry/df:1.0", processorVersion="1.1")
    response = response_to(obj)
    assert response["allowed"] is True
    assert [warning.split(":", 1)[0] for warning in response["warnings"]] == [
        "spec.checkpointSaveInterval", "spec.processorImage"]
    assert "consumer group" in response["warnings"][0]


def test_the_first_causes_of_a_huge_refusal() -> None:
    obj = copy.deepcopy(VALID)
    obj["spec"]["source"]["config"].update({f"bogus{i}": i for i in range(200)})
    status = response_to(obj)["status"]
    assert len(status["details"]["causes"]) == MAX_CAUSES
    assert status["message"].endswith(f"and {200 - MAX_CAUSES} more")


def test_a_secret_in_the_object_is_never_quoted() -> None:
    # A DSN pasted into the wrong field: validate quotes the field's value, the webhook must not.
    dsn = "postgres://app:Pa55-w0rd!@db:5432/app"
    obj = copy.deepcopy(VALID)
    obj["spec"]["source"]["config"]["format"] = dsn
    obj["spec"]["source"]["config"]["sasl"] = {"mechanism": "hunter2-wachtwoord", "username": "u",
                                               "password": "hunter2-wachtwoord"}
    text = json.dumps(response_to(obj))
    assert "spec.source.config.format" in text and "spec.source.config.sasl.mechanism" in text
    for secret in ("Pa55-w0rd!", "hunter2-wachtwoord"):
        assert secret not in text
    assert "[REDACTED]" in text


def test_updates_ratchet_on_an_unchanged_spec() -> None:
    invalid = copy.deepcopy(VALID)
    invalid["spec"]["replicas"] = 0
    relabelled = copy.deepcopy(invalid)
    relabelled["metadata"]["finalizers"] = ["example.org/keep"]
    relabelled["status"] = {"phase": "Error"}
    assert response_to(relabelled, operation="UPDATE", old=invalid)["allowed"] is True
    edited = copy.deepcopy(invalid)
    edited["spec"]["channelBufferSize"] = 10
    response = response_to(edited, operation="UPDATE", old=invalid)
    assert response["allowed"] is False and "spec.replicas" in response["status"]["message"]


def test_other_operations_and_kinds_are_not_judged() -> None:
    assert response_to(None, operation="DELETE", old=VALID)["allowed"] is True
    response = response_to({"kind": "ConfigMap"}, kind="ConfigMap", group="")
    assert response["allowed"] is True and "not reviewed" in response["warnings"][0]


def test_an_object_the_loader_refuses_is_refused_with_its_path() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = {"d": deep}
    obj = copy.deepcopy(VALID)
    obj["spec"]["affinity"] = deep
    response = response_to(obj)
    assert response["allowed"] is False
    (cause,) = response["status"]["details"]["causes"]
    assert cause["field"].startswith("spec.affinity.d") and "nested more than" in cause["message"]


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "not JSON"), (b"\xff\xfe", "not UTF-8"), (b"[1]", "not a JSON object"), (b"{}", "expected apiVersion"),
    (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "expected apiVersion"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request: missing"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}', "request.uid"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", '
     b'"operation": "CREATE"}}', "request.object: missing"),
    (b'{"a": 1, "a": 2}', "duplicate key"), (b"[" * 100_000 + b"]" * 100_000, "nested more than"),
    (b"[" + b"0," * 200_000 + b"0]", "more than 100000 nodes"),
    (b'{"apiVersion": NaN}', "NaN"),
])
def test_bodies_that_are_not_reviews_are_bad_requests(data: bytes, problem: str) -> None:
    with pytest.raises(BadReviewError, match=problem.replace("(", r"\(")):
        answer(data)


def test_an_object_of_too_many_nodes_is_refused() -> None:
    obj = copy.deepcopy(VALID)
    obj["spec"]["nodeSelector"] = {f"k{i}": "v" for i in range(120_000)}
    response = response_to(obj)
    assert response["allowed"] is False
    assert "more than 100000 nodes" in response["status"]["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), operation=st.sampled_from(["CREATE", "UPDATE"]))
def test_mutated_dataflows_always_get_an_answer(rng: Any, operation: str) -> None:
    obj = mutate_document(copy.deepcopy(rng.choice(EXAMPLES)[1]), rng)
    if _shares_containers(obj):
        return  # aliases expanded (billions of nodes): far beyond what the API server would store
    try:
        data = body(obj, operation=operation, old=VALID)
    except (TypeError, ValueError):
        return  # not JSON (a set, a non-string key): the API server cannot send it
    if len(data) > MAX_REVIEW_BYTES:
        return  # answered 413 by the server before it is read
    try:
        response = answer(data)["response"]
    except BadReviewError:
        return  # e.g. NaN outside the object
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        causes = response["status"]["details"]["causes"]
        assert causes and all(cause["field"] for cause in causes)
        assert "internal error" not in response["status"]["message"]


def _shares_containers(root: Any) -> bool:
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                return True
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)
    return False


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bodies_are_answered_or_refused_as_bad(data: bytes) -> None:
    with contextlib.suppress(BadReviewError):  # anything else would fail the test
        answer(data)
