"""The codeset a run works on: found and named as FuseML knows it, then copied for the run.

The runner never writes into the user's folder. Each run copies each codeset
to ``<state>/runs/<run>/codesets/<input>`` (without ``.git``, virtualenvs,
``mlruns`` and caches) and writes ``.fuseml/_org`` (the codeset's project) and
``.fuseml/_project`` (its name) there, as FuseML's checkout would have them.
Name and project come from ``--codeset-name``/``--codeset-project``, else the
codeset's own ``.fuseml`` files, else the folder name and ``local``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.workflow import Workflow, WorkflowError

DEFAULT_ORG = "local"
# Never copied into a run's codeset: history, environments, local MLflow data, caches.
_COPY_SKIP = {".git", ".venv", "venv", "mlruns", "mlartifacts", "__pycache__", ".pytest_cache", ".ruff_cache"}
_FUSEML_KEEP = {"_org", "_project"}


@dataclass(frozen=True)
class Codeset:
    """A codeset on disk with the names FuseML would know it by."""

    path: Path
    name: str
    project: str = DEFAULT_ORG


def resolve_codeset(path: str | Path, name: str | None = None, project: str | None = None) -> Codeset:
    """The codeset at ``path``; explicit names win over its ``.fuseml`` files and the folder name."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise WorkflowError(f"codeset {path} is not a folder", hint="pass --codeset with the project's folder")
    return Codeset(
        folder,
        name or _read_first_line(folder / ".fuseml" / "_project") or folder.name,
        project or _read_first_line(folder / ".fuseml" / "_org") or DEFAULT_ORG,
    )


def codesets_by_input(workflow: Workflow, codeset: Codeset | Mapping[str, Codeset] | None) -> dict[str, Codeset]:
    """Codesets by workflow input name; a single Codeset goes to the workflow's one codeset input."""
    if codeset is None:
        return {}
    if isinstance(codeset, Codeset):
        inputs = workflow.codeset_inputs
        if len(inputs) != 1:
            listed = ", ".join(i.name for i in inputs) or "none"
            raise WorkflowError(
                f"workflow {workflow.name} has {len(inputs)} codeset inputs ({listed}), so one --codeset is ambiguous",
                hint="pass --codeset INPUT=DIR for each",
            )
        return {inputs[0].name: codeset}
    return dict(codeset)


def stage_codeset(codeset: Codeset, dest: Path, skip: tuple[Path, ...] = ()) -> Path:
    """Copy ``codeset`` to ``dest`` and write its ``.fuseml`` names there; returns ``dest``.

    ``skip`` names folders inside the codeset not to copy (the state folder, when it lives there).
    """
    skipped = {p.resolve() for p in skip}

    def ignore(folder: str, entries: list[str]) -> list[str]:
        here = Path(folder)
        ignored = [e for e in entries if e in _COPY_SKIP or (here / e).resolve() in skipped]
        if here.name == ".fuseml" and here.parent == codeset.path:
            ignored += [e for e in entries if e not in _FUSEML_KEEP]
        return ignored

    shutil.copytree(codeset.path, dest, symlinks=True, ignore=ignore)
    metadata = dest / ".fuseml"
    metadata.mkdir(exist_ok=True)
    (metadata / "_org").write_text(codeset.project + "\n")
    (metadata / "_project").write_text(codeset.name + "\n")
    return dest


def _read_first_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None
