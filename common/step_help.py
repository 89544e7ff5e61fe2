"""``run --help`` for a step image: what the step does, every input it reads, where its output goes.

A user who pulled an image should not need the repository to know how to call it.
Each step declares its inputs once, as ``StepDoc`` (in ``steps/<step>/input_docs.py``);
the Tekton catalog's param descriptions are checked against the same text by a test,
so the two cannot drift. Inputs are environment variables (docs/contract.md), so the
command line takes nothing but ``--help`` (and whatever options a step adds).
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from common import names

NAME_WIDTH = 32
TEXT_WIDTH = 100


@dataclass(frozen=True)
class InputDoc:
    """One input: its contract name (``FUSEML_<NAME>`` carries it) and what it means."""

    name: str
    description: str


@dataclass(frozen=True)
class StepDoc:
    """What ``run --help`` says about a step."""

    step: str
    summary: str
    inputs: tuple[InputDoc, ...]
    output: str
    environment: tuple[InputDoc, ...] = field(default_factory=tuple)

    def input_names(self) -> set[str]:
        return {doc.name for doc in self.inputs}


# Every step reads this one (common/logs.py).
VERBOSE = InputDoc("verbose", "true for detailed logs (secrets stay masked)")


def help_epilog(doc: StepDoc) -> str:
    """The inputs, the extra variables and the output, as aligned text for argparse's epilog."""
    sections = [
        "inputs (environment variables; FuseML sets them from the workflow step's inputs):",
        *_rows((names.input_variable(i.name), i.description) for i in doc.inputs),
    ]
    if doc.environment:
        sections += [
            "",
            "also read (extensions and services):",
            *_rows((e.name, e.description) for e in doc.environment),
        ]
    output = (
        f"output: {doc.output}, written to ${names.RESULTS_DIR}/${names.TASK_RESULT} "
        f"(default {names.DEFAULT_RESULTS_DIR}/<{names.TASK_RESULT}>)"
    )
    exits = "exit codes: 0 done, 1 a clear error (one line on stderr), 2 a bug or bad usage, 130/143 interrupted"
    sections += ["", textwrap.fill(output, TEXT_WIDTH), textwrap.fill(exits, TEXT_WIDTH)]
    return "\n".join(sections)


def step_parser(doc: StepDoc, prog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` documents the step; steps add their own options to it."""
    return argparse.ArgumentParser(
        prog=prog or "run",
        description=textwrap.fill(doc.summary, TEXT_WIDTH),
        epilog=help_epilog(doc),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_step_arguments(doc: StepDoc, argv: Sequence[str]) -> argparse.Namespace:
    """``--help`` prints the step's documentation and exits 0; anything else unknown exits 2 with usage."""
    return step_parser(doc).parse_args(list(argv))


def _rows(rows: Iterable[tuple[str, str]]) -> list[str]:
    """Name, then its description wrapped in a column (a long name gets the description on the next line)."""
    indent = " " * (NAME_WIDTH + 2)
    lines = []
    for name, description in rows:
        wrapped = textwrap.wrap(description, TEXT_WIDTH - len(indent)) or [""]
        if len(name) < NAME_WIDTH:
            lines.append(f"  {name:<{NAME_WIDTH}}{wrapped[0]}")
        else:
            lines += [f"  {name}", indent + wrapped[0]]
        lines += [indent + line for line in wrapped[1:]]
    return lines
