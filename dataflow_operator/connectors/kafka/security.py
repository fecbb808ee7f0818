"""Which Kafka security protocol a config asks for, explicitly or by the blocks it has.

Pure and free of client libraries, so that spec validation can use it without loading librdkafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def normalize_security_protocol(value: str) -> str:
    """Case-insensitive, ``-`` and ``_`` interchangeable (connectors.md §2.1)."""
    return value.strip().upper().replace("-", "_")


def infer_security_protocol(config: Mapping[str, Any]) -> str:
    explicit = config.get("securityProtocol")
    if isinstance(explicit, str) and explicit.strip():
        return normalize_security_protocol(explicit)
    has_tls = isinstance(config.get("tls"), Mapping)
    has_sasl = isinstance(config.get("sasl"), Mapping)
    if has_tls and has_sasl:
        return "SASL_SSL"
    if has_sasl:
        return "SASL_PLAINTEXT"
    if has_tls:
        return "SSL"
    return "PLAINTEXT"
