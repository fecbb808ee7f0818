"""Finding pieces of a secret in text that left the process, and hostile connection strings.

A leak is any piece of four or more characters of the password — as written, percent-decoded or
percent-encoded — in the output. A piece that the same output shows when the password is an
unrelated placeholder (a port number, ``[REDACTED]``, a word of the message) proves nothing and is
left out: pass that output as ``control`` (made with :func:`placeholder_for`).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from hypothesis import strategies as st

FRAGMENT = 4
# The characters that delimit something in one form of connection string or the other.
HOSTILE_CHARACTERS = "?#@%:/ '\\=&\",;[]\t"


def fragments(secret: str) -> set[str]:
    """Every piece of FRAGMENT characters of ``secret`` in its written, decoded and encoded forms
    (a longer piece that survives contains one of these)."""
    forms = {secret, unquote(secret), quote(secret, safe="")}
    return {form[i:i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)}


def leaked(output: str, secret: str, control: str = "") -> list[str]:
    return sorted(piece for piece in fragments(secret) if piece in output and piece not in control)


def json_log_text(stream_text: str) -> str:
    """The string values of every JSON log line (escapes decoded, the time stamp left out, since it
    changes between a run and its control)."""
    values: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key != "ts":
                    values.append(str(key))
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)
        else:
            values.append(str(node))

    for line in stream_text.splitlines():
        collect(json.loads(line))
    return "\n".join(values)


def placeholder_for(password: str) -> str:
    """A password of the same shape sharing no word with ``password``: delimiters and the two hex
    digits after a ``%`` are kept, so that the control parses (or fails to parse) the same way."""
    char = next(c for c in "ЖЮЯ" if c not in password)
    kept = []
    for index, c in enumerate(password):
        escape = c in string.hexdigits and "%" in password[max(index - 2, 0):index]
        kept.append(c if c in HOSTILE_CHARACTERS or escape else char)
    return "".join(kept)


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[str, int], str]  # (password, port) -> connection string
    valid: bool


def _kv_quote(password: str) -> str:
    return password.replace("\\", "\\\\").replace("'", "\\'")


SHAPES = (
    Shape("uri, password percent-encoded", lambda p, port: f"postgresql://app:{quote(p, safe='')}@127.0.0.1:{port}/db",
          True),
    Shape("uri, password as typed", lambda p, port: f"postgresql://app:{p}@127.0.0.1:{port}/db", False),
    Shape("uri query, percent-encoded",
          lambda p, port: f"postgresql://127.0.0.1:{port}/db?user=app&password={quote(p, safe='')}", True),
    Shape("uri query, as typed", lambda p, port: f"postgresql://127.0.0.1:{port}/db?user=app&password={p}", False),
    Shape("key=value, quoted", lambda p, port: f"host=127.0.0.1 port={port} user=app password='{_kv_quote(p)}' dbname=db",
          True),
    Shape("key=value, unquoted", lambda p, port: f"host=127.0.0.1 port={port} user=app password={p} dbname=db", False),
    Shape("key=value, unterminated quote",
          lambda p, port: f"host=127.0.0.1 port={port} user=app dbname=db password='{p}", False),
)

# Any text, and words long enough to leak joined by delimiters, which is what makes libpq split a
# password into a host, a port or a parameter of its own.
passwords = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from(HOSTILE_CHARACTERS), st.characters(codec="utf-8")),
            min_size=FRAGMENT, max_size=24),
    st.builds(lambda words, separators: "".join(w + s for w, s in zip(words, separators, strict=False)) + words[-1],
              st.lists(st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=FRAGMENT,
                               max_size=8), min_size=2, max_size=4),
              st.lists(st.sampled_from(HOSTILE_CHARACTERS), min_size=3, max_size=3)),
).filter(lambda p: p.strip() != "")
