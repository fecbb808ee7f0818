"""What a checkout makes of configs and manifests, one JSON line each, to diff two checkouts.

For refactorings that must not change behaviour: every transformation type gets N fuzzed configs
(seeded, so both checkouts see the same ones); each line holds the `validate` errors and, for the
configs it accepts, the outputs on a few payloads. Then every hostile manifest and example goes
through the `validate` command.

    cd OLD && PYTHONPATH=$PWD python hack/behaviour_dump.py $PWD 400 > /tmp/before.jsonl
    cd NEW && PYTHONPATH=$PWD python hack/behaviour_dump.py $PWD 400 > /tmp/after.jsonl
    diff /tmp/before.jsonl /tmp/after.jsonl

``invalid_outputs`` (what a transformer built from a refused config does) may differ: production
never builds one.
"""
import glob
import json
import random
import sys
from datetime import UTC, datetime

from dataflow_operator.pipeline.message import Message
from dataflow_operator.transformers import registry

root = sys.argv[1]
out = []
KEYS = sorted({k for cls in registry.types().values() for k in cls.config_keys} | {"junk", "Field"})
STRINGS = ["a", "a.b", "$.a", "$", "", "  ", "x:y", "a:b", "broken", "json:{nope", "json:[1,2]", "json:3",
           "$.a > 1", "$.n ==5", "$.a == 'x'", "RFC3339", "UnixMilli", "2006-01-02", "Europe/Moscow", "+03:00",
           "int", "string", "float64", "decimal", "boolean", "X-Request-Id:rid", "items", "items[0].id", "c", "d",
           "{{now}}", "$timestamp", "r", "u", "snake", "meta.ts"]


def value(rng, depth=0):
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind <= 2:
        return rng.choice(STRINGS)
    if kind == 3:
        return rng.choice([0, 1, -1, 5, 2**70, 1.5])
    if kind == 4:
        return rng.choice([True, False])
    if kind == 5:
        return None
    if kind in (6, 7):
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(STRINGS + KEYS): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def config_for(rng, keys):
    if rng.random() < 0.05:
        return rng.choice([None, [], "x", 3])
    chosen = [k for k in keys if rng.random() < 0.7] + ([rng.choice(KEYS)] if rng.random() < 0.2 else [])
    return {k: value(rng) for k in chosen}


DOCS = [b'{"a":{"b":1,"c":"x"},"n":5,"items":[{"id":1},{"id":2}],"ts":"2024-01-15T10:30:00Z","u":"1.5"}',
        b'{"before":null,"after":{"id":1,"v":"x"},"op":"c","ts_ms":1700000000000}', b'[1,2]', b'not json',
        b'{"payload":{"after":{"id":3}},"schema":{}}', b'{"camelCase":{"innerKey":[{"deepKey":1}]},"snake_case":2}']
META = {"headers": {"X-Request-Id": "r-1"}, "topic": "t", "partition": 0, "offset": 4}
FIXED = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def make(type_, config, when):
    # Checkouts before the typed transformer configs built from the raw mapping.
    if hasattr(registry, "parse"):
        typed = registry.parse(type_, config, "t", [], when=when)
        return registry.build(type_, typed, when)
    return registry.build(type_, config, when)


def run(transformer):
    if hasattr(transformer, "clock"):
        transformer.clock = lambda: FIXED
    inner = getattr(transformer, "inner", None)
    if inner is not None and hasattr(inner, "clock"):
        inner.clock = lambda: FIXED
    results = []
    for doc in DOCS:
        try:
            outs = transformer.transform(Message(doc, json.loads(json.dumps(META)), timestamp=FIXED))
            results.append([[m.data.decode("utf-8", "replace"), json.dumps(m.metadata, sort_keys=True, default=str)]
                            for m in outs])
        except Exception as exc:
            results.append(f"{type(exc).__name__}: {exc}")
    return results


rng = random.Random(1234)
for type_, cls in registry.types().items():
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 400):
        config = config_for(rng, cls.config_keys)
        when = rng.choice([None, None, None, "$.n > 1", "$.a =="])
        errors = [str(e) for e in registry.validate(type_, config, "t", when=when)]
        line = {"type": type_, "config": json.dumps(config, sort_keys=True), "when": when, "errors": errors}
        if not errors:
            line["outputs"] = run(make(type_, config, when))
        else:
            try:
                line["invalid_outputs"] = run(make(type_, config, when))
            except Exception as exc:
                line["invalid_outputs"] = f"build failed: {type(exc).__name__}"
        out.append(json.dumps(line, sort_keys=True))

# Whole manifests: the hostile corpus and the examples through the `validate` command.
import subprocess  # noqa: E402

for path in sorted(glob.glob(f"{root}/tests/unit/spec/hostile_manifests/*") + glob.glob(f"{root}/examples/*.yaml")):
    done = subprocess.run([sys.executable, "-m", "dataflow_operator", "validate", path], capture_output=True,
                          text=True, cwd=root, check=False)
    out.append(json.dumps({"file": path.replace(root, ""), "rc": done.returncode,
                           "out": (done.stdout + done.stderr).replace(root, "<root>")}))
print("\n".join(out))
