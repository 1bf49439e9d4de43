"""YAML as the project reads its own files (the configuration, department policies, the data dictionary):
PyYAML's safe loader, refusing a key given twice in one mapping.

PyYAML keeps the last of two equal keys without a word, so a second ``quality:`` section appended to a
configuration (as the quality gate's advice may be pasted) would silently replace the first and drop its
settings. Here it is an error naming the key and both lines::

    load_yaml("quality: {a: 1}\\nquality: {b: 2}\\n")
    # yaml.constructor.ConstructorError: ... found the key 'quality' a second time (first on line 1) ...
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE = "tag:yaml.org,2002:merge"


class _UniqueKeys(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE:  # `<<:` may repeat keys
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} a second time (first on line {seen[key] + 1}): give each key "
                    "once, merging what the two hold",
                    key_node.start_mark,
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, but a key given twice in one mapping raises `yaml.YAMLError`."""
    return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass


def describe(exc: yaml.YAMLError) -> str:
    """A YAML error in one line, where and what, without the lines PyYAML quotes (a configuration's line
    may hold a secret): ``line 3, column 1: found the key 'quality' a second time (first on line 2) …``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(exc, "context", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return where + (f"{context}: {problem}" if context else problem)
