"""The codeset a step works on: the user's project, checked out as the working folder.

FuseML mounts the codeset at ``/project`` and makes it the working directory.
A codeset registered with FuseML carries ``.fuseml/_org`` and ``.fuseml/_project``
(one line each), which name the default MLflow experiment and application.
The MLproject is parsed by MLflow's own parser (imported lazily: the builder's
cache-hit path must not pay for importing MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from common.errors import CodesetError

if TYPE_CHECKING:
    from mlflow.projects._project_spec import EntryPoint, Project

MLPROJECT_NAMES = ("MLproject", "mlproject", "MLProject")
_FIX_MLPROJECT = "fix the MLproject file (format: https://mlflow.org/docs/latest/projects.html)"


@dataclass(frozen=True)
class Codeset:
    """A codeset folder and what it says about itself."""

    path: Path

    @classmethod
    def at(cls, path: str | Path = ".") -> Codeset:
        folder = Path(path).resolve()
        if not folder.is_dir():
            raise CodesetError(f"codeset folder {folder} does not exist")
        return cls(folder)

    @property
    def org(self) -> str | None:
        return self._metadata("_org")

    @property
    def project(self) -> str | None:
        return self._metadata("_project")

    @property
    def name(self) -> str:
        """``<org>.<project>`` when registered with FuseML, else the folder name."""
        if self.org and self.project:
            return f"{self.org}.{self.project}"
        return self.project or self.path.name

    @property
    def mlproject_file(self) -> Path | None:
        for candidate in self.path.iterdir():
            if candidate.is_file() and candidate.name.lower() == "mlproject":
                return candidate
        return None

    @cached_property
    def mlproject(self) -> Project:
        """The MLproject as MLflow reads it; errors name the file and what is wrong."""
        path = self.mlproject_file
        if path is None:
            raise CodesetError(
                f"no MLproject file in the codeset {self.path}",
                "add an MLproject file that declares the entry points (see the MLflow Projects docs)",
            )
        _check_mlproject_yaml(path)
        from mlflow.exceptions import MlflowException
        from mlflow.projects import _project_spec

        try:
            return _project_spec.load_project(str(self.path))
        except MlflowException as e:
            raise CodesetError(f"{path.name}: {e.message}", _FIX_MLPROJECT) from e

    def entry_point(self, name: str) -> EntryPoint:
        """The named entry point; an unknown name lists the ones there are."""
        points = self.mlproject._entry_points or {}
        if name not in points:
            known = ", ".join(sorted(points)) or "none"
            raise CodesetError(
                f"{self.mlproject_file.name}: no entry point {name!r} (entry points: {known})",
                "set FUSEML_MLFLOW_ENTRYPOINT to one of them",
            )
        return points[name]

    def _metadata(self, name: str) -> str | None:
        path = self.path / ".fuseml" / name
        try:
            value = path.read_text().strip()
        except OSError:
            return None
        return value.splitlines()[0].strip() if value else None


def _check_mlproject_yaml(path: Path) -> None:
    """Validate the shape MLflow assumes but does not check, with file and line."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}" if mark else path.name
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CodesetError(f"{where}: invalid YAML ({problem})", _FIX_MLPROJECT) from e
    if not isinstance(document, dict):
        raise CodesetError(
            f"{path.name}: expected a mapping with 'entry_points', got {type(document).__name__}", _FIX_MLPROJECT
        )
    entry_points = document.get("entry_points", {})
    if not isinstance(entry_points, dict):
        raise CodesetError(f"{path.name}: 'entry_points' must be a mapping of name to entry point", _FIX_MLPROJECT)
    for name, entry in entry_points.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
            raise CodesetError(f"{path.name}: entry point {name!r} needs a 'command' string", _FIX_MLPROJECT)
        parameters = entry.get("parameters", {}) or {}
        if not isinstance(parameters, dict):
            raise CodesetError(f"{path.name}: 'parameters' of entry point {name!r} must be a mapping", _FIX_MLPROJECT)
