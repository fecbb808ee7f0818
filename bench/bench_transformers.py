"""Per-transformation throughput on a ~1 KB JSON message.

Run: ``python bench/bench_transformers.py [--seconds 0.3]``. Prints input messages per second for
each type and its cost relative to one plain JSON decode + encode of the same message, measured in
the same run (the machines are shared, so the ratio is the result, not the absolute rate).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from dataflow_operator.pipeline.message import Message
from dataflow_operator.processor.assembly import registry_transformer
from dataflow_operator.processor.chain import Step
from dataflow_operator.processor.routes import RouteChoice
from dataflow_operator.spec.validation import load_spec
from dataflow_operator.transformers.jsonvalues import decode, encode

ROW: dict[str, Any] = {
    "orderId": 918273645, "status": "active", "createdAt": "2024-01-15T12:00:00.123Z",
    "updatedAt": 1705320000, "amount": "1234.50", "currency": "EUR", "isPaid": "true",
    "customer": {"customerId": 5521, "firstName": "Jane", "lastName": "Doe", "email": "jane@example.com",
                 "address": {"street": "1 Main St", "city": "Berlin", "zip": "10115", "country": "DE"}},
    "items": [{"sku": f"SKU-{n:04d}", "name": f"Item number {n}", "qty": n, "price": 9.99 + n}
              for n in range(6)],
    "tags": ["priority", "gift", "repeat-customer"],
    "notes": "Leave the parcel at the front desk; call before delivery if possible.",
    "metrics": {"views": 12, "clicks": 3, "score": 0.87},
    "channel": "web", "referrer": "https://example.com/campaigns/spring-sale?utm_source=mail",
}
DEBEZIUM = {"schema": {}, "payload": {"op": "u", "before": None, "after": ROW,
                                      "source": {"table": "orders", "db": "shop", "lsn": 42}}}

FILE = {"type": "file", "config": {"path": "-"}}
CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = [
    ("timestamp", {}, ROW),
    ("flatten", {"field": "items"}, ROW),
    ("filter", {"condition": "$.status == 'active' && $.customer.address.country != 'US'"}, ROW),
    ("mask", {"fields": ["customer.email", "customer.lastName"], "keepLength": True}, ROW),
    ("router", {"routes": [{"condition": "$.status == 'cancelled'", "sink": FILE},
                           {"condition": "$.isPaid == 'true'", "sink": FILE}]}, ROW),
    ("select", {"fields": ["orderId", "status", "customer.email", "amount"]}, ROW),
    ("remove", {"fields": ["notes", "customer.address", "metrics"]}, ROW),
    ("snakeCase", {"deep": True}, ROW),
    ("camelCase", {"deep": True}, ROW),
    ("debeziumUnwrap", {"addOperationFields": True, "addSourceFields": ["table"]}, DEBEZIUM),
    ("replaceField", {"renames": ["customer.email:email", "orderId:id"], "exclude": ["notes"]}, ROW),
    ("headersToPayload", {"mappings": ["X-Request-Id:requestId", "X-Lang:meta.lang"]}, ROW),
    ("structFlatten", {"delimiter": "_"}, ROW),
    ("extractField", {"field": "customer"}, ROW),
    ("hoistField", {"field": "row"}, ROW),
    ("cast", {"spec": {"amount": "float64", "isPaid": "bool", "orderId": "string"}}, ROW),
    ("timezone", {"timezone": "Europe/Moscow", "fields": ["createdAt", "updatedAt"]}, ROW),
    ("insertField",
     {"fields": {"pipeline": "orders", "topic": "${metadata.topic}", "flags.replay": "json:false"}}, ROW),
]
METADATA = {"topic": "orders", "partition": 3, "offset": 1234, "key": "918273645",
            "headers": {"X-Request-Id": "req-1", "X-Lang": "en"}}


def step(type_: str, config: dict[str, Any] | None) -> Step:
    """The chain step the processor makes of this one entry: a transformer, or a router's choice."""
    entry = load_spec({"source": FILE, "sink": FILE, "transformations": [{"type": type_, "config": config}]})
    parsed = entry.transformations[0]
    return RouteChoice(parsed.router) if parsed.router is not None else registry_transformer(parsed)


def rate(step: Callable[[], object], seconds: float) -> float:
    """Calls per second: the best of three timed runs of a calibrated batch."""
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            step()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 3:
            break
        batch *= 2
    best = elapsed
    for _ in range(2):
        started = time.perf_counter()
        for _ in range(batch):
            step()
        best = min(best, time.perf_counter() - started)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.3, help="time per measurement")
    args = parser.parse_args()

    data = encode(ROW)
    baseline = rate(lambda: encode(decode(data)), args.seconds)
    rows: list[tuple[str, float, int]] = []
    for type_, config, payload in CASES:
        transformer = step(type_, config)
        message = Message(encode(payload), dict(METADATA))
        outputs = len(transformer.transform(message))
        rows.append((type_, rate(partial(transformer.transform, message), args.seconds), outputs))

    print(f"payload: {len(data)} bytes; baseline json decode+encode: {baseline:,.0f} msg/s")
    print(f"{'transformation':<18} {'msg/s':>12} {'us/msg':>8} {'x baseline':>10} {'out':>4}")
    for type_, per_second, outputs in rows:
        print(f"{type_:<18} {per_second:>12,.0f} {1e6 / per_second:>8.1f} {baseline / per_second:>10.2f} "
              f"{outputs:>4}")
    slowest = sorted(rows, key=lambda row: row[1])[:3]
    print("slowest:", ", ".join(type_ for type_, _, _ in slowest))


if __name__ == "__main__":
    main()
