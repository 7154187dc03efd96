"""Safe YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions, so we compose the node graph (safe tags only) and build the
Python value ourselves, recording ``path -> (line, column)`` for every mapping key and value. Size
limits stop alias bombs ("billion laughs"), merge-key bombs (``<<`` of mappings that merge
mappings, which PyYAML copies pair by pair: 1 KB of YAML became a gigabyte) and absurd nesting
before they cost memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml

from stackdecide._files import read_user_text
from stackdecide.errors import DecisionFileError, Location

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 5_000_000
MAX_DEPTH = 40
MAX_NODES = 200_000
_YAML_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = f"{_YAML_TAG}merge"
_PLAIN_TAGS = (f"{_YAML_TAG}map", f"{_YAML_TAG}seq")
# YAML's standard scalar tags. Everything else is refused, including tags SafeLoader would build
# (!!binary gives bytes, !!timestamp a datetime, !!set a dict of None, !!omap a list of pairs):
# a decision file holds text, numbers, true/false and null, in mappings and lists (and << merges).
SCALAR_TAGS = frozenset(f"{_YAML_TAG}{name}" for name in ("str", "int", "float", "bool", "null"))
# Plain scalars that YAML 1.1 resolves to these tags stay text: a date written as 2025-08-20 is the
# text the author wrote, and a lone "=" is not YAML's obscure "value" key.
_TEXT_NOT_RESOLVED = (f"{_YAML_TAG}timestamp", f"{_YAML_TAG}value")


def format_path(path: PathKey) -> str:
    """``("candidates", 1, "scores", "x")`` -> ``candidates[1].scores.x``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Positions:
    """Line/column of each value in a loaded document, looked up by field path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._marks: dict[PathKey, tuple[int, int]] = {}
        self._key_marks: dict[PathKey, tuple[int, int]] = {}

    def record(self, path: PathKey, node: yaml.Node, key_node: yaml.Node | None = None) -> None:
        self._marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if key_node is not None:
            self._key_marks[path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)

    def locate(self, path: PathKey, key: bool = False) -> Location:
        """The closest known position at or above ``path`` (of its key, with ``key``)."""
        probe = tuple(path)
        if key and probe in self._key_marks:
            line, column = self._key_marks[probe]
            return Location(self.file, line, column, format_path(path) or None)
        while probe and probe not in self._marks:
            probe = probe[:-1]
        line, column = self._marks.get(probe, (None, None))
        return Location(self.file, line, column, format_path(path) or None)


class _SafeComposer(yaml.SafeLoader):
    """SafeLoader used to compose nodes; the builder constructs only scalars of ``SCALAR_TAGS``.

    Without the implicit timestamp and value resolvers, a node tagged so must have been tagged
    explicitly (``!!timestamp``), and is refused like any other tag outside the standard set.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag not in _TEXT_NOT_RESOLVED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _Builder:
    def __init__(self, loader: _SafeComposer, positions: Positions) -> None:
        self.loader = loader
        self.positions = positions
        self.nodes = 0
        self.merged_pairs = 0  # pairs that resolving merge keys has created so far
        self.merge_free: set[int] = set()  # mappings known to hold no merge key (by id)

    def build(self, node: yaml.Node, path: PathKey, depth: int,
              key_node: yaml.Node | None = None) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise DecisionFileError(
                f"the document expands to more than {MAX_NODES} values (alias-heavy YAML?)",
                self.positions.locate(path),
            )
        if depth > MAX_DEPTH:
            raise DecisionFileError(
                f"nesting deeper than {MAX_DEPTH} levels is not a decision file",
                self._loc(node, path[:4]),
            )
        self.positions.record(path, node, key_node)
        self._check_tag(node, path)
        if isinstance(node, yaml.MappingNode):
            own_pairs = sum(k.tag != _MERGE_TAG for k, _ in node.value)
            if own_pairs < len(node.value):
                self._count_merges(node, path)
            self.loader.flatten_mapping(node)  # resolves merge keys (<<), merged pairs first
            merged_pairs = len(node.value) - own_pairs
            result: dict[str, Any] = {}
            own_keys: set[str] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                self._check_tag(key_node, path)
                key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise DecisionFileError(
                        "mapping keys must be plain strings", self._loc(key_node, path)
                    )
                key = str(key)
                if index >= merged_pairs:  # an explicit key may override a merged one, not repeat
                    if key in own_keys:
                        raise DecisionFileError(
                            f"duplicate key '{key}'", self._loc(key_node, (*path, key))
                        )
                    own_keys.add(key)
                result[key] = self.build(value_node, (*path, key), depth + 1, key_node)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _count_merges(self, node: yaml.MappingNode, path: PathKey) -> None:
        """Refuse merges whose resolution would create more pairs than a document may hold, before
        PyYAML creates them. Resolving ``<<`` copies every merged pair into the mapping (PyYAML
        6.0.2 keeps repeats too), and the mappings it merges are resolved first: counted here the
        same way, each mapping once, without copying anything."""
        sizes: dict[int, int] = {}  # mappings with merge keys reached now -> pairs once resolved

        def size(mapping: yaml.MappingNode, depth: int, open_: set[int]) -> int:
            if id(mapping) in self.merge_free:
                return len(mapping.value)
            if id(mapping) in sizes:
                return sizes[id(mapping)]
            if id(mapping) in open_:
                raise DecisionFileError("a mapping merges itself (<< names an alias of a mapping "
                                        "it is inside)", self._loc(mapping, path))
            if depth > MAX_DEPTH:
                raise DecisionFileError(f"merge keys (<<) nest deeper than {MAX_DEPTH} levels",
                                        self._loc(mapping, path))
            own = sum(key.tag != _MERGE_TAG for key, _ in mapping.value)
            if own == len(mapping.value):
                self.merge_free.add(id(mapping))
                return own
            open_.add(id(mapping))
            total = own
            for key, value in mapping.value:
                if key.tag == _MERGE_TAG:
                    sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                    total += sum(size(source, depth + 1, open_) for source in sources
                                 if isinstance(source, yaml.MappingNode))
            open_.discard(id(mapping))
            sizes[id(mapping)] = total
            return total

        size(node, 0, set())
        self.merged_pairs += sum(sizes.values())
        if self.merged_pairs > MAX_NODES:
            raise DecisionFileError(
                f"merge keys (<<) expand to more than {MAX_NODES} key-value pairs (merges of "
                "merges copy every pair: a merge-key bomb?)", self._loc(node, path))

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
            reason = str(exc).split(":")[0]
            raise DecisionFileError(f"'{str(node.value)[:20]}...' cannot be read as a number "
                                    f"({reason})", self._loc(node, path)) from None

    def _check_tag(self, node: yaml.Node, path: PathKey) -> None:
        allowed = SCALAR_TAGS if isinstance(node, yaml.ScalarNode) else _PLAIN_TAGS
        if node.tag in allowed:
            return
        shown = f"!!{node.tag.removeprefix(_YAML_TAG)}" if node.tag.startswith(_YAML_TAG) \
            else node.tag
        raise DecisionFileError(
            f"unsupported YAML tag {shown}: a decision file holds plain text, numbers, true/false, "
            "null, lists and mappings; remove the tag (quote the value to keep it as text)",
            self._loc(node, path))

    def _loc(self, node: yaml.Node, path: PathKey) -> Location:
        return Location(
            self.positions.file, node.start_mark.line + 1, node.start_mark.column + 1,
            format_path(path) or None,
        )


def read_text(path: Path) -> str:
    """Read a decision file as UTF-8 text, refusing missing, huge and binary files clearly."""
    return read_user_text(path, kind="decision file", content="YAML", limit=MAX_FILE_BYTES,
                          error=DecisionFileError)


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document safely; returns the value and the positions of its parts."""
    positions = Positions(file)
    try:
        # the reader checks every character when it is made: a control character raises here
        loader = _SafeComposer(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, file) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise DecisionFileError("the file is empty", Location(file))
        return _Builder(loader, positions).build(node, (), 0), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise DecisionFileError(f"YAML syntax error: {problem}", Location(file, line, column)) \
            from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise DecisionFileError(f"YAML error: {exc}", Location(file)) from None
    except RecursionError:
        raise DecisionFileError("YAML nests too deeply", Location(file)) from None
    finally:
        loader.dispose()


def _unreadable(exc: yaml.reader.ReaderError, text: str, file: str) -> DecisionFileError:
    """A character YAML does not allow (a control character), at its line and column."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return DecisionFileError(f"character U+{exc.character:04X} is not allowed in YAML; remove it",
                             Location(file, line, column))
