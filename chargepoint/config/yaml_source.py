"""The station's YAML text as data, with the line of every key.

Duplicate keys (PyYAML would keep the last one silently) and keys that are not plain names are
problems; so are syntax errors, an empty file, a top level that is not a mapping, and alias
bombs ("billion laughs"). Messages quote no line of the file: it could hold a secret.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chargepoint.config.problems import ConfigError, ConfigProblem, Loc, dotted, line_key

__all__ = ["YamlDocument", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_EXPANDED_NODES = 100_000  # far above any station; stops alias bombs ("billion laughs")
_SECTIONS = "station, csms, meter_buses and connectors"


@dataclass(frozen=True)
class YamlDocument:
    """The top-level mapping, the line of each key path, and the problems found on the way."""

    data: dict[str, Any]
    lines: dict[tuple[str, ...], int]
    problems: list[ConfigProblem]


def read_yaml(text: str, path: Path) -> YamlDocument:
    """Parse `text` (from `path`, named in errors); raises ConfigError when there is no usable
    mapping at all. Duplicate keys come back in `problems`."""
    try:
        # the reader checks the characters already: a control character fails here
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], path) from None
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_size(root, {}) > _MAX_EXPANDED_NODES:
            raise ConfigError(
                [ConfigProblem("", None, "the YAML expands to too many values (aliases?)")], path
            )
        # index before constructing: construction rewrites merge keys (<<) in the nodes
        lines, problems = ({}, []) if root is None else _index_lines(root)
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], path) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem("", None, "the YAML is nested too deeply")], path
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise ConfigError(
            [ConfigProblem("", None, f"the file is empty; it needs {_SECTIONS}")], path
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError(
            [
                ConfigProblem(
                    "",
                    root.start_mark.line + 1,
                    f"the top level must be a mapping of sections ({_SECTIONS}, ...), not {kind}",
                )
            ],
            path,
        )
    return YamlDocument(data, lines, problems)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the document holds once aliases are expanded (cycles count once)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # in progress: a cycle back to here counts 1
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, memo) + _expanded_size(value_node, memo)
            if size > _MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > _MAX_EXPANDED_NODES:
                break
    memo[id(node)] = size
    return size


def _index_lines(root: yaml.Node) -> tuple[dict[tuple[str, ...], int], list[ConfigProblem]]:
    """Map key paths to 1-based lines; report duplicate keys (PyYAML keeps the last)."""
    lines: dict[tuple[str, ...], int] = {(): root.start_mark.line + 1}
    problems: list[ConfigProblem] = []
    seen: set[int] = set()
    queue: deque[tuple[yaml.Node, Loc]] = deque([(root, ())])
    while queue:  # breadth first, in file order: a later duplicate overrides the earlier one
        node, path = queue.popleft()
        if id(node) in seen:  # an alias: indexed where the anchor is
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            merged: list[yaml.Node] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merged.append(value_node)
                    continue
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(ConfigProblem(dotted(path), line, "keys must be plain names"))
                    continue
                key = str(key_node.value)
                child = (*path, key)
                if key in first:
                    problems.append(
                        ConfigProblem(
                            dotted(child),
                            line,
                            f"duplicate key {key!r} (first at line {first[key]}); "
                            "YAML would keep only the last one",
                        )
                    )
                first.setdefault(key, line)
                lines[line_key(child)] = line  # the last one is the value that counts
                queue.append((value_node, child))
            for source in merged:
                sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
                for mapping in sources:
                    if isinstance(mapping, yaml.MappingNode):
                        for key_node, _value in mapping.value:
                            child = (*path, str(key_node.value))
                            lines.setdefault(line_key(child), key_node.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                lines[line_key(child)] = item.start_mark.line + 1
                queue.append((item, child))
    return lines, problems


def _yaml_problem(exc: yaml.YAMLError) -> ConfigProblem:
    # only the short problem descriptions: PyYAML's full text quotes the line (a secret?)
    if isinstance(exc, yaml.reader.ReaderError):
        return ConfigProblem(
            "",
            None,
            f"the file holds a character YAML does not allow (#x{exc.character:04x}) at "
            f"position {exc.position}",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(t for t in (exc.context, exc.problem) if t)
        return ConfigProblem("", mark.line + 1 if mark else None, f"YAML syntax error: {what}")
    return ConfigProblem("", None, f"YAML error: {type(exc).__name__}")
