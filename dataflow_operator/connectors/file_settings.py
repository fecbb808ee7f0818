"""The typed file connector configs (connectors.md §2.3): parsed and checked once, with field paths."""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline.api_fields import allowed_keys, api_field, build
from ..pipeline.config_fields import Fields

#: The path that means standard input (source) or standard output (sink).
STANDARD_STREAM = "-"


@dataclass(frozen=True, slots=True)
class FileSourceConfig:
    path: str = api_field(f"File to read, one JSON message per line; {STANDARD_STREAM} for standard input.")
    follow: bool = api_field("Keep reading what is appended, like tail -f.", default=False)
    poll_interval_seconds: float = api_field("Seconds between checks for appended lines when following.",
                                             default=0.2, minimum=0.01)
    max_line_bytes: int = api_field("Longest line read as a message. A longer one is not held in memory: it "
                                    "goes to the error sink as its first KiB, and reading goes on after it.",
                                    default=16 << 20, minimum=1)

    @classmethod
    def parse(cls, f: Fields) -> FileSourceConfig:
        f.unknown_keys(allowed_keys(cls))
        path = f.string("path", required=True)
        follow = f.boolean("follow")
        interval = f.number("pollIntervalSeconds", minimum=0.01)
        max_line_bytes = f.integer("maxLineBytes", minimum=1)
        if follow and f.config.get("path") == STANDARD_STREAM:
            f.error("follow", "cannot follow stdin")
        return build(cls, path=path or "", follow=follow, poll_interval_seconds=interval,
                     max_line_bytes=max_line_bytes)


@dataclass(frozen=True, slots=True)
class FileSinkConfig:
    path: str = api_field(f"File to append to, one JSON message per line; {STANDARD_STREAM} for standard "
                          "output.")
    batch_size: int = api_field("Lines per write.", default=100, minimum=1)
    batch_flush_interval_seconds: float = api_field("Longest wait before a partial batch is written; 0: never "
                                                    "on a timer.", default=1.0, minimum=0)

    @classmethod
    def parse(cls, f: Fields) -> FileSinkConfig:
        f.unknown_keys(allowed_keys(cls))
        return build(cls, path=f.string("path", required=True) or "", batch_size=f.integer("batchSize", minimum=1),
                     batch_flush_interval_seconds=f.number("batchFlushIntervalSeconds", minimum=0))
