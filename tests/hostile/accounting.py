"""Where did each message go? Every input must be in exactly one place: the main sink or the error sink."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .corpus import Hostile


def strict_json(data: bytes) -> Any:
    """Parse as a strict RFC 8259 parser would: UTF-8, no NaN/Infinity, finite numbers, no lone surrogates."""
    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def finite(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"number {text} overflows a double")
        return value

    value = json.loads(data.decode("utf-8"), parse_constant=reject, parse_float=finite)
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def original_of(record: bytes) -> tuple[str, bytes]:
    """``("bytes", payload)`` or ``("sha256", digest)`` from an error record, which must be strict JSON."""
    body = strict_json(record)
    assert set(body["error"]) >= {"message", "type", "timestamp", "original_sink", "stage", "metadata"}, body
    if "original_message" in body:
        start = record.index(b'"original_message":') + len(b'"original_message":')
        return "bytes", record[start:-1]  # kept verbatim, line breaks as spaces
    if "original_data" in body:
        return "bytes", str(body["original_data"]).encode("utf-8")
    if "original_data_base64" in body:
        return "bytes", base64.b64decode(body["original_data_base64"])
    return "sha256", bytes.fromhex(body["original_omitted"]["sha256"])


def _as_recorded(payload: bytes) -> bytes:
    return payload.replace(b"\r", b" ").replace(b"\n", b" ")


def assert_exact_placement(corpus: Sequence[Hostile], sink: str, main: Iterable[bytes],
                           errors: Iterable[bytes]) -> None:
    """``main``: what the main sink holds, one entry per message (for PostgreSQL: each row's ``k``).
    ``errors``: the error sink's records."""
    main_found = Counter(main)
    error_found = Counter(original_of(record) for record in errors)
    problems = []
    for entry in corpus:
        in_main = main_found.pop(entry.written(), 0) if sink != "postgresql" else main_found.pop(
            entry.name.encode(), 0)
        in_errors = (error_found.pop(("bytes", entry.payload), 0) + error_found.pop(("bytes", _as_recorded(entry.payload)), 0)
                     + error_found.pop(("sha256", hashlib.sha256(entry.payload).digest()), 0))
        expected = entry.placement(sink)
        if (in_main, in_errors) != ((1, 0) if expected == "main" else (0, 1)):
            problems.append(f"{entry.name}: expected once in the {expected} sink, found main={in_main} "
                            f"error={in_errors}")
    if main_found:
        problems.append(f"unexpected main-sink entries: {[item[:80] for item in main_found]}")
    if error_found:
        problems.append(f"unexpected error records: {[(kind, item[:80]) for kind, item in error_found]}")
    assert not problems, "\n".join(problems)
