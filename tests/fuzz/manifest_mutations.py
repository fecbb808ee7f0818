"""Hostile manifests made by mutating valid ones, reproducibly from a ``random.Random``.

Two layers: the parsed document is mutated (keys dropped, renamed, duplicated or added; values
replaced by hostile ones, retyped, nested deep or shared so the dump uses aliases), then the text
or bytes are (lines duplicated or dropped, tags inserted, random bytes, truncation, more
documents). Layers are chosen at random, so well-formed and subtly broken inputs both occur.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
BASES = sorted([*ROOT.glob("examples/*.yaml"), Path(__file__).with_name("rich_dataflow.yaml"),
                *(ROOT / "tests/unit/spec/reference_samples").glob("*.yaml")])

HOSTILE_SCALARS: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**70, -(2**70), 10**400, 0.5, -0.0, 1e308, math.nan, math.inf,
    -math.inf, "", " ", "0", "-1", "1e3", "-1Gi", "100m", "NaN", "Infinity", "America", "Etc", "../../etc/passwd",
    "Europe/\0Moscow", "x" * 300, "é", "\u202eevil", "\ud800", "\U0001f600", "a: b", "- x", "*alias", "&anchor",
    "{", "[", "30s", "-5s", "9" * 400 + "s", "2026-02-30T00:00:00Z", "2026-01-31T02:00:00Z", "$.a ==", "$.a == 1",
    "kafka", "postgresql", "file", "config", "type", "<<", "\t", "\n", "%", "@", "`", "!!int",
]
TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!str", "!!binary", "!!timestamp", "!!set", "!!omap", "!!map",
        "!!seq", "!foo", "!!python/object:os.system", "!<tag:yaml.org,2002:int>"]
ODD_BYTES = [b"\xff", b"\xfe\xff", b"\x00", b"\t", b"\x07", b"\x1b[31m", b"\xc3", b"\xe2\x80", b"\r", b"\r\n",
             "\u2028".encode(), b"\xef\xbb\xbf", b"'", b'"', b"\\", b"{", b"}", b"[", b"]", b":", b"- ", b"? ",
             b"&a ", b"*a", b"!", b"|", b">", b"#", b"---\n", b"...\n", b"%YAML 1.1\n"]


def _containers(root: Any) -> list[Any]:
    """Every dict and list in ``root``, each once (a mutation may have made it shared or cyclic)."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, (dict, list)) and id(value) not in seen:
            seen.add(id(value))
            found.append(value)
            stack.extend(value.values() if isinstance(value, dict) else value)
    return found


def _hostile_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.random()
    if choice < 0.6 or depth > 2:
        return rng.choice(HOSTILE_SCALARS)
    if choice < 0.7:
        nested: Any = rng.choice(HOSTILE_SCALARS)
        for _ in range(rng.choice([5, 30, 63, 64, 65, 100, 300])):
            nested = [nested] if rng.random() < 0.5 else {"k": nested}
        return nested
    if choice < 0.85:
        return {rng.choice(["type", "config", "name", "key", "a", 1, None, True]): _hostile_value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return [_hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _laughs(rng: random.Random) -> list[Any]:
    """Nested shared lists: the dump writes them as anchors and aliases."""
    level: list[Any] = ["lol"] * rng.randint(2, 10)
    for _ in range(rng.randint(1, 9)):
        level = [level] * rng.randint(2, 10)
    return level


def mutate_document(document: Any, rng: random.Random) -> Any:
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 4)):
        containers = _containers(document)
        if not containers:
            return _hostile_value(rng)
        target = rng.choice(containers)
        if isinstance(target, dict):
            if not target:
                target[rng.choice(["type", "config", "bogus"])] = _hostile_value(rng)
                continue
            key = rng.choice(list(target))
            operation = rng.randrange(7)
            if operation == 0:
                del target[key]
            elif operation == 1:
                target[key] = _hostile_value(rng)
            elif operation == 2:
                target[f"{key}x" if isinstance(key, str) else "bogus"] = target[key]  # a typo beside the original
            elif operation == 3:
                target[key] = _laughs(rng)
            elif operation == 4:
                shared = target[key]
                other = rng.choice(containers)
                if isinstance(other, dict):
                    other["shared"] = shared  # the same object twice: an alias, maybe into itself
                else:
                    other.append(shared)
            elif operation == 5:
                value = target[key]
                target[key] = [value] if not isinstance(value, list) else {"0": value}
            else:
                target[rng.choice(HOSTILE_SCALARS[:12])] = _hostile_value(rng)  # non-string keys
        elif target:
            index = rng.randrange(len(target))
            if rng.random() < 0.5:
                target[index] = _hostile_value(rng)
            else:
                del target[index]
        else:
            target.append(_hostile_value(rng))
    return document


def _dump(document: Any) -> str:
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1_000_000)
    except (yaml.YAMLError, RecursionError):  # a dict made to contain itself cannot be dumped
        return yaml.safe_dump({"unrepresentable": True})


def _insert_tag(text: str, rng: random.Random) -> str:
    marker = rng.choice([": ", "- "])
    positions = [i for i in range(len(text)) if text.startswith(marker, i)]
    if not positions:
        return text
    at = rng.choice(positions) + 2
    return text[:at] + rng.choice(TAGS) + " " + text[at:]


def _lines(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    index = rng.randrange(len(lines))
    operation = rng.randrange(4)
    if operation == 0:
        lines.insert(index, lines[index])  # often a duplicate key
    elif operation == 1:
        del lines[index]
    elif operation == 2:
        lines[index] = " " * rng.randint(0, 3) + lines[index]
    else:
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    return "".join(lines)


def _bytes(data: bytes, rng: random.Random) -> bytes:
    operation = rng.randrange(4)
    at = rng.randint(0, len(data))
    if operation == 0:
        return data[:at] + rng.choice(ODD_BYTES) + data[at:]
    if operation == 1:
        return data[:at]
    if operation == 2:
        return data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]
    return data + b"---\n" + rng.choice([b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", b"null\n",
                                         b"[1, 2]\n", b"kind: DataFlow\n", data])


TextMutation = Callable[[str, random.Random], str]
TEXT_MUTATIONS: list[TextMutation] = [_insert_tag, _lines,
                                      lambda text, rng: text.replace(": ", ": " + "[" * 200, 1) + "]" * 200]


def mutated_manifest(rng: random.Random) -> bytes:
    """One hostile manifest: a valid base mutated by one or more layers."""
    base = rng.choice(BASES)
    # Mostly structural, so that mutations reach the validators; text and byte damage stop the
    # loader early and are rarer.
    structure, text_damage, byte_damage = rng.random() < 0.8, rng.random() < 0.35, rng.random() < 0.15
    if not (structure or text_damage or byte_damage):
        structure = True
    text = base.read_text(encoding="utf-8")
    if structure:
        documents = list(yaml.safe_load_all(text))
        text = "---\n".join(_dump(mutate_document(document, rng)) for document in documents)
    if text_damage:
        for _ in range(rng.randint(1, 3)):
            text = rng.choice(TEXT_MUTATIONS)(text, rng)
    data = text.encode("utf-8", errors="surrogatepass")
    if byte_damage:
        for _ in range(rng.randint(1, 3)):
            data = _bytes(data, rng)
    return data
