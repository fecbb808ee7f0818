"""Bounded, strict loading of manifest text (YAML or JSON) into plain values.

PyYAML's ``safe_load`` is total only for modest, well-formed input. A manifest is untrusted, so
this loader adds:

- bounded work. An input holds at most :data:`MAX_MANIFEST_BYTES`; a document nests at most
  :data:`MAX_NESTING_DEPTH` levels, uses at most :data:`MAX_ALIASES` alias references and holds at
  most :data:`MAX_EXPANDED_NODES` nodes once every alias is expanded. The "billion laughs"
  document is a few hundred bytes, uses 90 aliases and expands to 10^9 nodes; PyYAML builds it
  shared, but the first ``repr`` or ``json.dumps`` of it expands it all.
- strictness where YAML is lenient: a duplicate key is an error (PyYAML keeps the last one
  silently), and so is a key that is not a string (``on:`` is True in YAML 1.1); a tagged scalar
  must match its tag (``!!int 1.5`` raised a bare ValueError); only the JSON data model is built
  (``!!binary``, ``!!set``, ``!!timestamp`` ... are refused), and an unquoted timestamp stays a
  string, as Kubernetes' YAML reader (sigs.k8s.io/yaml) keeps it.
- every failure as a :class:`ManifestError` naming the document, the field path and the line.

Libyaml's C parser produces the events when PyYAML has it; the composer, where the limits are
enforced, is PyYAML's Python one either way.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, DocumentStartEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from ..pipeline.config_fields import field_path, shown

#: The largest input read; beyond it nothing is parsed. Twice the API server's 1.5 MiB object limit,
#: so a file of a few DataFlows with their Secrets fits, and Python composes it in seconds.
MAX_MANIFEST_BYTES: Final = 3 * 1024 * 1024
#: The deepest nesting of mappings and lists; a DataFlow needs about 10 (affinity is the deepest).
MAX_NESTING_DEPTH: Final = 64
#: Alias references (``*name``) per document.
MAX_ALIASES: Final = 100
#: Nodes per document with every alias expanded (a DataFlow has a few hundred; this bounds the
#: composition time too, as most bytes of a large document are in long strings, not in nodes).
MAX_EXPANDED_NODES: Final = 100_000
#: Python refuses to convert longer digit strings (sys.get_int_max_str_digits()).
MAX_INTEGER_DIGITS: Final = 4300

_TAG: Final = "tag:yaml.org,2002:"
_MERGE_TAG: Final = _TAG + "merge"


@dataclass(frozen=True)
class ManifestError(Exception):
    """An input that cannot be loaded: where (document index, field path, line) and why."""

    path: str
    message: str
    document: int = 0
    line: int | None = None
    column: int | None = None

    @property
    def detail(self) -> str:
        """The message with the position, when known."""
        position = "" if self.line is None else f" (line {self.line}, column {self.column})"
        return self.message + position

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


WHOLE_DOCUMENT: Final = "<document>"


def read_manifest(path: str, stdin: IO[bytes] | None = None) -> bytes:
    """The bytes of ``path`` (``-``: ``stdin``, by default the process's); more than
    :data:`MAX_MANIFEST_BYTES` is an error.

    Only one byte beyond the limit is read, so ``/dev/zero`` or a huge file costs nothing."""
    if path == "-":
        data = (stdin or sys.stdin.buffer).read(MAX_MANIFEST_BYTES + 1)
    else:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(WHOLE_DOCUMENT, f"larger than {MAX_MANIFEST_BYTES} bytes (MAX_MANIFEST_BYTES)")
    return data


_DOCUMENT_START: Final = re.compile(rb"^---(?:[ \t\r\n]|$)", re.MULTILINE)
_CONTENT_LINE: Final = re.compile(rb"^[^\s#%]", re.MULTILINE)


def decode_manifest(data: bytes) -> str:
    """UTF-8 text (a leading byte-order mark dropped); other bytes are an error naming the offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[:exc.start]
        raise ManifestError(WHOLE_DOCUMENT, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                            document=_documents_before(prefix), line=prefix.count(b"\n") + 1,
                            column=len(prefix) - (prefix.rfind(b"\n") + 1) + 1) from None


def _documents_before(prefix: bytes) -> int:
    """The index of the YAML document that ``prefix`` ends in (``---`` lines counted; one that
    opens the stream, before any content, starts document 0)."""
    starts = [match.start() for match in _DOCUMENT_START.finditer(prefix)]
    content = _CONTENT_LINE.search(prefix)
    if starts and (content is None or starts[0] <= content.start()):
        return len(starts) - 1
    return len(starts)


class _KubernetesResolver(Resolver):
    """YAML 1.1 implicit types, except timestamps: Kubernetes reads those as strings."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != _TAG + "timestamp"]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


# The grammar each implicit type is recognised by; an explicitly tagged scalar must match it too.
_GRAMMARS: Final = {tag: pattern for resolvers in Resolver.yaml_implicit_resolvers.values()
                    for tag, pattern in resolvers}


class _StrictConstructor(SafeConstructor):
    """The JSON data model only, every scalar checked against its tag's grammar."""

    yaml_constructors = {tag: constructor for tag, constructor in SafeConstructor.yaml_constructors.items()
                         if tag is None or tag[len(_TAG):] in ("null", "bool", "int", "float", "str", "seq", "map")}

    def _scalar_text(self, node: Node, kind: str) -> str:
        text = self.construct_scalar(node)  # type: ignore[arg-type]  # ConstructorError unless a scalar
        if not _GRAMMARS[_TAG + kind].match(text):
            raise ConstructorError(None, None, f"{shown(text)} is not a valid {kind}", node.start_mark)
        return text

    def construct_yaml_null(self, node: Node) -> None:
        self._scalar_text(node, "null")

    def construct_yaml_bool(self, node: Node) -> bool:
        self._scalar_text(node, "bool")
        return super().construct_yaml_bool(node)  # type: ignore[arg-type]

    def construct_yaml_int(self, node: Node) -> int:
        text = self._scalar_text(node, "int")
        if len(text) > MAX_INTEGER_DIGITS:
            raise ConstructorError(None, None, f"integer of {len(text)} digits is too long", node.start_mark)
        try:
            return super().construct_yaml_int(node)  # type: ignore[arg-type]
        except ValueError:  # a form the grammar admits but holds no digits, e.g. 0b_ or 0x_
            raise ConstructorError(None, None, f"{shown(text)} is not a valid int", node.start_mark) from None

    def construct_yaml_float(self, node: Node) -> float:
        self._scalar_text(node, "float")
        return super().construct_yaml_float(node)  # type: ignore[arg-type]


for _kind in ("null", "bool", "int", "float"):
    _StrictConstructor.yaml_constructors[_TAG + _kind] = getattr(_StrictConstructor, f"construct_yaml_{_kind}")


class _LimitedComposer(Composer):
    """PyYAML's composer with a field path for every node, and the limits of this module."""

    # The event source (a parser) is mixed in; the stubs do not tell the composer about it.
    check_event: Callable[..., bool]
    peek_event: Callable[[], Event]
    construct_object: Callable[..., Any]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.document_index = -1
        self.paths: list[str] = []
        self.node_paths: dict[Node, str] = {}
        self._mapping_keys: list[dict[str, int]] = []
        self._aliases = 0
        self._expanded = 0
        self._anchored_sizes: dict[Node, int] = {}

    def compose_document(self) -> Node | None:
        if self.check_event(DocumentStartEvent):
            self.document_index += 1
        self._aliases = self._expanded = 0
        self._anchored_sizes = {}
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.paths.append(_child_path(self.paths[-1] if self.paths else "", parent, index))
        try:
            return self._compose_at(self.paths[-1], parent, index)
        except yaml.YAMLError as exc:  # located here, while the path of the failing node is known
            raise self.located(exc) from None
        finally:
            self.paths.pop()

    def _compose_at(self, path: str, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._count_alias(target, path, event)
            return cast(Node, super().compose_node(parent, index))
        if len(self.paths) > MAX_NESTING_DEPTH:
            raise self.error(path, f"nested more than {MAX_NESTING_DEPTH} levels deep (MAX_NESTING_DEPTH)", event)
        if isinstance(index, ScalarNode) and isinstance(parent, MappingNode):
            self._check_duplicate(index, path)
        self._expanded += 1
        before = self._expanded
        node = cast(Node, super().compose_node(parent, index))
        self.node_paths.setdefault(node, path)
        if getattr(event, "anchor", None) is not None:
            self._anchored_sizes[node] = self._expanded - before + 1
        self._check_expansion(path, event)
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        self._mapping_keys.append({})
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._mapping_keys.pop()

    def _count_alias(self, target: Node, path: str, event: Any) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self.error(path, f"more than {MAX_ALIASES} aliases in one document (MAX_ALIASES)", event)
        size = self._anchored_sizes.get(target)
        if size is None:
            raise self.error(path, f"alias *{event.anchor} refers to a node that contains it", event)
        self._expanded += size
        self._check_expansion(path, event)

    def _check_expansion(self, path: str, event: Any) -> None:
        if self._expanded > MAX_EXPANDED_NODES:
            raise self.error(path, f"more than {MAX_EXPANDED_NODES} nodes with aliases expanded "
                                   "(MAX_EXPANDED_NODES)", event)

    def _check_duplicate(self, key_node: ScalarNode, path: str) -> None:
        if key_node.tag == _MERGE_TAG:
            return
        key = self.construct_object(key_node, deep=True)  # deep: no generator left for later
        seen = self._mapping_keys[-1]
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):  # JSON has no other keys; `on:` would be True, `1:` an int
            raise ManifestError(path, f"key {key_node.value!r} must be a string (quote it)", self.document_index,
                                line, key_node.start_mark.column + 1)
        if key in seen:
            raise ManifestError(path, f"duplicate key {shown(str(key))} (first at line {seen[key]})",
                                self.document_index, line, key_node.start_mark.column + 1)
        seen[key] = line

    def located(self, exc: yaml.YAMLError, path: str | None = None) -> ManifestError:
        """``exc`` at ``path`` (default: the node being composed) and its line."""
        path = path or (self.paths[-1] if self.paths else None) or WHOLE_DOCUMENT
        document = max(self.document_index, 0)
        if isinstance(exc, yaml.reader.ReaderError):
            # libyaml counts the offset in UTF-8 bytes, PyYAML's reader in characters.
            before = self.text.encode()[:exc.position] if yaml.__with_libyaml__ else self.text[:exc.position].encode()
            line = before.count(b"\n") + 1
            column = len(before[before.rfind(b"\n") + 1:].decode(errors="replace")) + 1
            return ManifestError(path, f"not valid YAML: {exc.reason} (character #x{exc.character:04x})",
                                 document, line, column)
        if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
            return ManifestError(path, f"not valid YAML: {exc}", document)
        mark = exc.problem_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        return ManifestError(path, f"not valid YAML: {problem}", document, mark.line + 1, mark.column + 1)

    def error(self, path: str, message: str, event: Any) -> ManifestError:
        mark = event.start_mark
        return ManifestError(path, message, self.document_index, mark.line + 1, mark.column + 1)


def _child_path(parent_path: str, parent: Node | None, index: Any) -> str:
    """Composer calls: ``index`` is a list position, the key node of a mapping value, or None
    (the root, or a mapping key itself)."""
    if parent is None:
        return parent_path
    if isinstance(index, int):
        return f"{parent_path}[{index}]"
    if isinstance(index, ScalarNode):
        return field_path(parent_path, index.value)
    if isinstance(index, Node):
        return f"{parent_path}.<complex key>" if parent_path else "<complex key>"
    return parent_path or WHOLE_DOCUMENT


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _EventSource(CParser):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
else:  # pragma: no cover - PyYAML built without libyaml
    class _EventSource(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)


class _ManifestLoader(_LimitedComposer, _EventSource, _StrictConstructor, _KubernetesResolver):
    def __init__(self, text: str) -> None:
        _EventSource.__init__(self, text)
        _LimitedComposer.__init__(self, text)
        _StrictConstructor.__init__(self)
        _KubernetesResolver.__init__(self)

    def construct_document(self, node: Node) -> Any:
        # Deep construction builds every node inside construct_object, so a failure is reported
        # with that node's path rather than from a deferred generator without context.
        self.deep_construct = True
        return super().construct_document(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ConstructorError as exc:
            raise self.located(exc, self.node_paths.get(node)) from None


def load_yaml_documents(text: str) -> Iterator[tuple[int, Any]]:
    """``(index, value)`` per document (None for an empty one); raises :class:`ManifestError` at
    the first document that cannot be loaded (the ones before it have been yielded)."""
    loader = _ManifestLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                value = None if node is None else loader.construct_document(node)
            except yaml.YAMLError as exc:
                raise loader.located(exc) from None
            yield max(loader.document_index, 0), value
    finally:
        loader.dispose()


class _JsonRejected:
    """A JSON value the parser's hooks refused; reported with its path after parsing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it saw twice."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    result = _JsonObject()
    result.duplicates = []
    for key, value in pairs:
        if key in result:
            result.duplicates.append(key)
        result[key] = value
    return result


def _json_constant(name: str) -> _JsonRejected:
    return _JsonRejected(f"{name} is not a JSON number")


def _json_int(text: str) -> int | _JsonRejected:
    if len(text) > MAX_INTEGER_DIGITS:
        return _JsonRejected(f"integer of {len(text)} digits is too long")
    return int(text)


def load_json_document(text: str) -> Any:
    """The value of a JSON text. Raises :class:`json.JSONDecodeError` when ``text`` is not JSON
    at all, and :class:`ManifestError` when it is JSON that a manifest may not hold: a duplicate
    key, NaN or ±Infinity, an over-long integer, or nesting beyond :data:`MAX_NESTING_DEPTH`."""
    try:
        value = json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant,
                           parse_int=_json_int)
    except RecursionError:  # the C scanner's own depth guard, far beyond MAX_NESTING_DEPTH
        raise ManifestError(WHOLE_DOCUMENT, f"nested more than {MAX_NESTING_DEPTH} levels deep "
                                            "(MAX_NESTING_DEPTH)") from None
    return _checked_json(value)


def _checked_json(root: Any) -> Any:
    """``root`` with plain dicts, after checking it iteratively (no recursion on deep input). JSON
    has no aliases, but the bound on nodes holds as for YAML: the work of validating is proportional."""
    stack: list[tuple[Any, str, int]] = [(root, "", 1)]
    nodes = 0
    while stack:
        value, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_EXPANDED_NODES:
            raise ManifestError(WHOLE_DOCUMENT, f"more than {MAX_EXPANDED_NODES} nodes (MAX_EXPANDED_NODES)")
        shown_path = path or WHOLE_DOCUMENT
        if depth > MAX_NESTING_DEPTH:
            raise ManifestError(shown_path, f"nested more than {MAX_NESTING_DEPTH} levels deep (MAX_NESTING_DEPTH)")
        if isinstance(value, _JsonRejected):
            raise ManifestError(shown_path, value.reason)
        if isinstance(value, _JsonObject):
            if value.duplicates:
                raise ManifestError(shown_path, f"duplicate key {shown(value.duplicates[0])}")
            stack.extend((item, field_path(path, key), depth + 1) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
    return _plain(root)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_single_document(data: bytes) -> Any:
    """The one document of a JSON or YAML input (the processor's spec file). JSON is tried first
    and, being JSON, is held to JSON's rules; empty documents aside, exactly one must be present."""
    text = decode_manifest(data)
    try:
        return load_json_document(text)
    except json.JSONDecodeError:
        pass  # not JSON: YAML
    documents = [(index, value) for index, value in load_yaml_documents(text) if value is not None]
    if len(documents) != 1:
        index = documents[1][0] if documents else 0
        raise ManifestError(WHOLE_DOCUMENT, f"expected one document, found {len(documents)}", index)
    return documents[0][1]
