"""Every value of a connection string that must be treated as secret, however the string is written.

libpq accepts two forms, ``postgresql://user:pass@host/db?…`` and ``host=… password='…'``, each with
its own quoting. A password may hold characters that delimit something in either form (``@ : / ?
# & = ,``, quotes, spaces, ``%``-escapes), and then the string parses in ways nobody predicts: libpq
takes the first ``@`` for the end of the user info and urllib the last one, the rest of the password
becomes a host, a port or a query parameter, and libpq quotes that piece in its error messages.

So this module does not try to find *the* password. It returns every candidate, and the registry
scrubs them all; over-scrubbing a log line costs a little reading, a leak costs a credential:

- the whole string;
- every password-like parameter as libpq parses it (``psycopg.conninfo.conninfo_to_dict``) and the
  password as ``urllib.parse`` parses it, raw and percent-decoded;
- in a URI, the raw user info between ``://`` and the *last* ``@`` (when it holds more than a user
  name) and its password part after the first ``:``;
- after each ``password=``, the raw value up to the next unquoted space (or ``&`` in a URI query),
  and the tail a malformed value may run on to: in the key=value form up to the next libpq keyword
  (``… dbname=``), in a URI query up to the end;
- every run of the password candidates (not the tails) between delimiters that is at least :data:`MIN_FRAGMENT` long,
  because that is the piece libpq takes for a host, port or option name and quotes on its own.
"""

from __future__ import annotations

import functools
import itertools
import re
from urllib.parse import parse_qs, unquote, urlsplit

#: Shorter pieces of a password are not registered on their own: they would scrub common words
#: from every line, and three characters of a password do not give it away.
MIN_FRAGMENT = 4
#: Beyond this many piece boundaries, only single pieces, prefixes and suffixes are registered
#: (every run would be quadratic in the length of a pathological value).
_MAX_BOUNDS_FOR_ALL_RUNS = 64
_SECRET_KEYWORDS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key",
                              "scram_server_key"})
# Control characters delimit too: libpq receives C strings, so a NUL ends the string it parses there.
_DELIMITER = re.compile(r"[@:/?#&=,;\[\]\s'\"\\\x00-\x1f\x7f]")
_PASSWORD_ASSIGNMENT = re.compile(r"(?:^|(?<=[\s?&]))(?:ssl)?password\s*=\s*", re.IGNORECASE)


@functools.cache
def _next_keyword() -> re.Pattern[str]:
    """`` keyword=`` for any keyword libpq knows: where a run-on unquoted password surely ends."""
    from psycopg import pq

    keywords = sorted((option.keyword.decode() for option in pq.Conninfo.get_defaults()), key=len, reverse=True)
    return re.compile(r"\s+(?:" + "|".join(map(re.escape, keywords)) + r")\s*=")


def connection_string_secrets(dsn: str) -> set[str]:
    """Every value in ``dsn`` to register as secret (see the module docstring), blank ones left out."""
    passwords = _libpq_passwords(dsn) | _urllib_passwords(dsn)
    values, tails = _raw_assignments(dsn)
    passwords |= values
    secrets = {dsn, dsn.strip()} | tails | {unquote(tail) for tail in tails}
    region = userinfo(dsn)
    if region is not None:
        secrets.add(region)
        user, colon, password = region.partition(":")
        passwords.add(password if colon else user)
    for password in passwords - _short_pieces(passwords):
        secrets.add(password)
        secrets.add(unquote(password))
        secrets.update(_runs(password))
        secrets.update(_runs(unquote(password)))
    return {secret for secret in secrets if secret.strip()}


def _short_pieces(passwords: set[str]) -> set[str]:
    """Candidates shorter than MIN_FRAGMENT inside a longer one: libpq reads ``p`` as the password
    of ``app:p@ss…@host``, and registering ``p`` would scrub every "p" from every line. A short
    password that is all there is (``app:pw@host``) is kept."""
    return {short for short in passwords if len(short) < MIN_FRAGMENT
            and any(len(other) > len(short) and short in other for other in passwords)}


def _libpq_passwords(dsn: str) -> set[str]:
    from psycopg import conninfo

    try:
        parsed = conninfo.conninfo_to_dict(dsn)
    except Exception:  # a malformed string: the raw candidates below cover it
        return set()
    return {str(value) for key, value in parsed.items() if key in _SECRET_KEYWORDS and value is not None}


def _urllib_passwords(dsn: str) -> set[str]:
    if "://" not in dsn:
        return set()
    try:
        parts = urlsplit(dsn)
        found = {parts.password} if parts.password else set()
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key.lower() in _SECRET_KEYWORDS:
                found.update(values)
    except ValueError:  # e.g. an unbalanced "[" taken for an IPv6 host
        return set()
    return found


def userinfo(url: str) -> str | None:
    """The raw text between ``://`` and the last ``@``, when it may hold a password (a ``:`` or a
    second ``@``); a bare user name is not a secret."""
    _, scheme_end, rest = url.partition("://")
    at = rest.rfind("@")
    if not scheme_end or at < 0:
        return None
    region = rest[:at]
    return region if ":" in region or "@" in region else None


def _raw_assignments(dsn: str) -> tuple[set[str], set[str]]:
    """After each ``password=``: the value up to the next unquoted space (a quoted one without its
    quotes, escapes as written), or in a URI query up to ``&``; and the tail that a malformed value
    may run on to, up to the next keyword (key=value form) or the end. Only the first are pieced
    into runs: a tail holds other parameters, whose pieces are not secret."""
    values: set[str] = set()
    tails: set[str] = set()
    for match in _PASSWORD_ASSIGNMENT.finditer(dsn):
        rest = dsn[match.end():]
        if match.start() > 0 and dsn[match.start() - 1] in "?&":
            value = rest.split("&", 1)[0]
            values.update((value, re.split(r"\s", value, maxsplit=1)[0]))
            tails.add(rest)
            continue
        values.add(_quoted_value(rest[1:]) if rest.startswith("'") else re.split(r"\s", rest, maxsplit=1)[0])
        following = _next_keyword().search(rest)
        tail = rest[: following.start()] if following else rest
        tails.update((tail, tail[1:]) if tail.startswith("'") else (tail,))
    return values, tails


def _quoted_value(text: str) -> str:
    """``text`` up to the closing quote of a libpq single-quoted value (or all of it, unterminated)."""
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "'":
            return text[:index]
        index += 1
    return text


def _runs(value: str) -> set[str]:
    """Substrings of ``value`` at least MIN_FRAGMENT long that begin and end next to a delimiter or
    at an end of ``value``, with or without the delimiter itself (libpq splits a URI at ``/`` but
    keeps a quote, and the key=value form the other way round)."""
    delimiters = [match.start() for match in _DELIMITER.finditer(value)]
    bounds = sorted({0, len(value)} | {i for d in delimiters for i in (d, d + 1)})
    if len(bounds) <= _MAX_BOUNDS_FOR_ALL_RUNS:
        runs = {value[start:end] for i, start in enumerate(bounds) for end in bounds[i + 1:]}
    else:
        runs = {value[start:] for start in bounds} | {value[:end] for end in bounds}
        runs |= {value[start:end] for start, end in itertools.pairwise(bounds)}
    return {run for run in runs if len(run) >= MIN_FRAGMENT}
