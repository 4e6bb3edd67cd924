"""YAML for files an operator (or an attacker with write access to one) hands the agent.

`yaml.safe_load` constructs no objects, but still expands aliases (a 1 KB "billion laughs" file
grows to gigabytes), recurses once per nesting level, turns a 5,000-digit integer into a
ValueError deep inside the constructor, and lets `"\\ud800"` or `"\\0"` escapes through as
strings that later fail to encode. This loader refuses all of these up front, each as a
`yaml.YAMLError` whose first line says what and where, so callers keep one error path.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import Node, ScalarNode

MAX_BYTES = 1 << 20  # a configuration is a few KiB; a scenario at most tens
MAX_DEPTH = 32
MAX_INT_DIGITS = 20  # beyond 64 bits: no option means that


class SafeYAMLError(yaml.YAMLError):
    """Input refused before or while composing; str(err) is one line."""


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    # The scanner looks ahead over every "[" or "{" (each might start a key), so nesting is
    # bounded where it counts levels, before composing: 100,000 brackets cost microseconds.
    def fetch_flow_collection_start(self, token: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise SafeYAMLError(f"nested deeper than {MAX_DEPTH} levels{_at(self.get_mark())}")
        super().fetch_flow_collection_start(token)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise SafeYAMLError(f"nested deeper than {MAX_DEPTH} levels{_at(self.get_mark())}")
        return bool(super().add_indent(column))

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise SafeYAMLError(f"aliases (*name) are not allowed{_at(mark)}")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise SafeYAMLError(f"nested deeper than {MAX_DEPTH} levels{_at(mark)}")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if sum(c.isalnum() for c in text) > MAX_INT_DIGITS:
            why = f"an integer of more than {MAX_INT_DIGITS} digits"
            raise ConstructorError(None, None, why, node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_str(self, node: ScalarNode) -> str:
        text = str(self.construct_scalar(node))
        if "\0" in text:
            raise ConstructorError(None, None, "a string holds NUL (\\0)", node.start_mark)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            why = "a string is not valid Unicode (a lone surrogate escape)"
            raise ConstructorError(None, None, why, node.start_mark) from None
        return text


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


def _at(mark: Any) -> str:
    return "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"


def load(text: str) -> Any:
    """One YAML document, within the bounds above. Raises yaml.YAMLError."""
    if len(text) > MAX_BYTES:
        raise SafeYAMLError(f"larger than {MAX_BYTES >> 10} KiB; not a configuration file")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise SafeYAMLError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: the problem and where it is."""
    if isinstance(err, SafeYAMLError):
        return str(err)
    mark = getattr(err, "problem_mark", None)
    text = getattr(err, "problem", None) or (str(err).splitlines() or ["syntax error"])[0]
    return f"{text}{_at(mark)}"
