"""YAML that remembers where each value was written, so a problem can name ``file:line``.

PyYAML's SafeLoader forgets positions once it builds Python values; this
loader keeps the (1-based) line of every mapping, sequence item and key.
"""

from __future__ import annotations

from typing import Any

import yaml

from runner.workflow.errors import WorkflowError


class LineMap(dict):
    """A mapping that remembers its line and the line of each key."""

    line = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of ``key``, else of the mapping itself."""
        return self.key_lines.get(key, self.line)


class LineSeq(list):
    """A sequence that remembers its line and the line of each item."""

    line = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineMap:  # type: ignore[override]
        mapping = LineMap(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, _ in node.value:
            mapping.key_lines[str(self.construct_object(key_node))] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineSeq:  # type: ignore[override]
        sequence = LineSeq(super().construct_sequence(node, deep=True))
        sequence.line = node.start_mark.line + 1
        sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
        return sequence


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


def load_yaml(text: str, source: str) -> Any:
    """The YAML document in ``text``, its mappings and lists with lines; invalid YAML is a WorkflowError.

    The usual cause in a workflow is an unquoted template (``value: {{ inputs.x }}``
    reads as a YAML mapping), so that case gets its own hint.
    """
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(e, "problem", None) or str(e)
        hint = "fix the indentation or quoting"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "{{" in lines[mark.line]:
            hint = 'put a template in quotes: value: "{{ inputs.x }}"'
        raise WorkflowError(f"{where}: not valid YAML: {problem}", hint=hint) from e
