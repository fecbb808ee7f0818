"""Messages nobody on the team would write, and where each must end up.

Every pipeline that runs this corpus is ``source → cast {amount: float64} → sink`` with an error
sink. ``cast`` fails a message whose ``amount`` is not a number (a transformation failure, for every
sink); a message without ``amount`` or that is not JSON passes it unchanged, bytes included, and then
meets the sink, which may refuse it (``refused_by``). Every payload is unique, so each input is
found in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SINKS = ("file", "kafka", "postgresql")
DEEP = 10_000
#: Above the test broker's default message.max.bytes (1 MiB): Kafka refuses it, and the error
#: record that would carry it too — the record is then written without the payload.
OVERSIZED = 2 * 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str
    payload: bytes
    #: A transformation rejects it: it goes to the error sink whatever the sink.
    transform_fails: bool = False
    #: Sinks that refuse it (it then goes to the error sink).
    refused_by: frozenset[str] = field(default_factory=frozenset)
    #: What the main sink receives when the transformation changes the payload.
    output: bytes | None = None

    def placement(self, sink: str) -> str:
        return "error" if self.transform_fails or sink in self.refused_by else "main"

    def written(self) -> bytes:
        return self.payload if self.output is None else self.output

    @property
    def has_line_break(self) -> bool:
        return b"\n" in self.payload or b"\r" in self.payload


def _refused_by(*sinks: str) -> frozenset[str]:
    return frozenset(sinks)


PG = _refused_by("postgresql")

CORPUS: tuple[Hostile, ...] = (
    Hostile("plain", b'{"k":"plain","amount":"1.5"}', output=b'{"k":"plain","amount":1.5}'),
    Hostile("untouched", b'{"k":"untouched","note":"no amount"}'),
    # A JSON escape for a lone surrogate, in a message the transformation rejects: the error-record
    # builder crashed on it (UTF-8 encode) and the processor exited 1 on every restart.
    Hostile("surrogate-escape-rejected", b'{"k":"surrogate-escape-rejected","name":"\\ud800","amount":"x"}',
            transform_fails=True),
    # The same escape passing through: PostgreSQL's jsonb refuses a lone surrogate.
    Hostile("surrogate-escape", b'{"k":"surrogate-escape","name":"\\udfff"}', refused_by=PG),
    Hostile("surrogate-pair-escape", b'{"k":"surrogate-pair-escape","name":"\\ud83d\\ude00 \xf0\x9f\x98\x80"}'),
    # CESU-8: a surrogate encoded as three bytes, which is not UTF-8, so not JSON.
    Hostile("cesu8-bytes", b'{"k":"cesu8-bytes","s":"\xed\xa0\x80"}', refused_by=PG),
    Hostile("invalid-utf8", b'\xff\xfe{"k":"invalid-utf8"}\x80', refused_by=PG),
    Hostile("deep-array", b'{"k":"deep-array","v":' + b"[" * DEEP + b"]" * DEEP + b"}", refused_by=PG),
    # 1e400 overflows a double: the error record must not say Infinity.
    Hostile("number-overflow-cast", b'{"k":"number-overflow-cast","amount":1e400}', transform_fails=True),
    Hostile("number-overflow", b'{"k":"number-overflow","big":1e400}', refused_by=PG),
    Hostile("nan-literal", b'{"k":"nan-literal","v":NaN}', refused_by=PG),
    Hostile("bigint-overflow", b'{"k":"bigint-overflow","n":123456789012345678901234567890}', refused_by=PG),
    Hostile("nul-escape", b'{"k":"nul-escape","s":"a\\u0000b"}', refused_by=PG),
    Hostile("wrong-type", b'{"k":"wrong-type","n":"not a number"}', refused_by=PG),
    Hostile("cast-rejects", b'{"k":"cast-rejects","amount":"abc"}', transform_fails=True),
    Hostile("cast-rejects-object", b'{"k":"cast-rejects-object","amount":{"v":1}}', transform_fails=True),
    Hostile("top-level-array", b'["top-level-array",1,2]', refused_by=PG),
    Hostile("top-level-string", b'"top-level-string"', refused_by=PG),
    Hostile("bom", b'\xef\xbb\xbf{"k":"bom"}', refused_by=PG),
    Hostile("not-json", b"not json at all: top-level text", refused_by=PG),
    Hostile("escapes", b'{"k":"escapes","s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}'),
    Hostile("control-bytes", b'{"k":"control-bytes"}\x00\x01\x1b[31m', refused_by=PG),
    Hostile("oversized", b'{"k":"oversized","s":"' + b"x" * OVERSIZED + b'"}', refused_by=_refused_by("kafka")),
    # Only a Kafka source can carry these: a file source splits lines (and skips blank ones), and a
    # file sink cannot write a line break inside one JSON Lines record.
    Hostile("empty", b"", refused_by=PG),
    Hostile("pretty-printed", b'{\n  "k": "pretty-printed",\r\n  "n": 1\n}', refused_by=_refused_by("file")),
    Hostile("raw-line-break-text", b"line one\nline two", refused_by=_refused_by("file", "postgresql")),
)


def for_line_source() -> tuple[Hostile, ...]:
    """The corpus as a JSON Lines file can carry it."""
    return tuple(entry for entry in CORPUS if entry.payload.strip() and not entry.has_line_break)
