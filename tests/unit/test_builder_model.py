"""The builder's model mode (input ``model``): its settings, and fetching only the files that decide the
serving environment, from a model folder as MLflow 3.17 writes it (written here by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.build_log import BuildError
from common.errors import InputError
from common.mlmodel import ModelError
from steps.builder.model_files import fetch_environment_files, serving_environment
from steps.builder.settings import BuilderSettings

MLMODEL = """\
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.skops
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_uuid: 98ef7afce03d40829f9b2233667d089e
"""
PYTHON_ENV = """\
python: 3.11.7
build_dependencies:
- pip==26.3
- setuptools==84.2.1
- wheel
dependencies:
- -r requirements.txt
"""
REQUIREMENTS = "mlflow==3.17.2\nnumpy==2.4.6\nscikit-learn==1.9.1\nskops==0.16.0"
CONDA = """\
channels:
- conda-forge
dependencies:
- python=3.11.7
- pip<=26.3
- pip:
  - mlflow==3.17.2
  - numpy==2.4.6
  - scikit-learn==1.9.1
  - skops==0.16.0
name: mlflow-env
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A saved model: MLmodel, the three environment files, the weights and a code folder."""
    folder = tmp_path / "model"
    (folder / "code").mkdir(parents=True)
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "python_env.yaml").write_text(PYTHON_ENV)
    (folder / "requirements.txt").write_text(REQUIREMENTS)
    (folder / "conda.yaml").write_text(CONDA)
    (folder / "model.skops").write_bytes(b"\0weights" * 1000)
    (folder / "code" / "helper.py").write_text("X = 1\n")
    return folder


# Settings ------------------------------------------------------------------------------


def test_model_mode_builds_the_serving_kind_into_its_own_repository() -> None:
    settings = BuilderSettings.from_environ({"FUSEML_MODEL": " models:/wine/3 "})
    assert settings.model == "models:/wine/3"
    assert settings.kind == "serving"
    assert settings.pull_reference("t") == "127.0.0.1:30500/mlflow/serving:t"
    assert settings.push_reference("t") == "registry.fuseml-registry/mlflow/serving:t"


def test_a_given_repository_wins_in_model_mode() -> None:
    settings = BuilderSettings.from_environ({"FUSEML_MODEL": "s3://b/m", "FUSEML_REPOSITORY": "team/wine-serving"})
    assert settings.pull_reference("t") == "127.0.0.1:30500/team/wine-serving:t"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_model_is_the_codeset_mode_as_before(value: str) -> None:
    # FuseML passes an input it has no value for as an empty string.
    settings = BuilderSettings.from_environ({"FUSEML_MODEL": value})
    assert settings.model is None and settings.kind == "trainer"
    assert settings.pull_reference("t") == "127.0.0.1:30500/mlflow/trainer:t"


# Fetching the environment files --------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "file"])
def test_only_mlmodel_and_the_environment_files_are_fetched(model: Path, tmp_path: Path, form: str) -> None:
    uri = str(model) if form == "path" else model.as_uri()
    destination = tmp_path / "fetched"
    location = fetch_environment_files(uri, {}, destination)
    assert location.artifact_uri == uri
    assert sorted(p.name for p in destination.iterdir()) == [
        "MLmodel",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    ]
    for name in ("MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"):
        assert (destination / name).read_bytes() == (model / name).read_bytes()


def test_a_model_with_only_requirements_txt_brings_only_that(model: Path, tmp_path: Path) -> None:
    (model / "python_env.yaml").unlink()
    (model / "conda.yaml").unlink()
    fetch_environment_files(str(model) + "/", {}, tmp_path / "fetched")
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == ["MLmodel", "requirements.txt"]


def test_a_folder_without_mlmodel_is_refused_naming_the_uri(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        fetch_environment_files(str(model.parent), {}, tmp_path / "fetched")
    assert str(caught.value).startswith(f"model={model.parent}: no MLmodel file at {model.parent}")
    assert "the trainer step's output" in str(caught.value)
    assert not (tmp_path / "fetched").exists()


def test_an_unreadable_mlmodel_is_refused_naming_the_file(model: Path, tmp_path: Path) -> None:
    (model / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(ModelError) as caught:
        fetch_environment_files(str(model), {}, tmp_path / "fetched")
    assert f"{model}/MLmodel" in str(caught.value)
    assert not (tmp_path / "fetched").exists()


def test_the_codeset_is_not_needed(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A serving-builder step may run in an empty folder: nothing of the working directory is read.
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    fetch_environment_files(str(model), {}, tmp_path / "fetched")
    assert list(empty.iterdir()) == []


def test_the_serving_environment_is_the_models_plus_the_runtimes_and_remembers_its_file(model: Path) -> None:
    serving = serving_environment(model.as_uri(), {})
    names = {line.split("==")[0] for line in serving.spec.requirements}
    assert {"scikit-learn", "skops", "numpy", "mlflow-skinny", "kserve", "boto3"} <= names
    assert "mlflow" not in names, "the model's mlflow is served as mlflow-skinny"
    assert serving.spec.python == "3.11"
    assert serving.origin == "requirements.txt"  # python_env.yaml only says -r requirements.txt


def test_an_install_conflict_is_said_with_both_sides_and_other_failures_stay_as_they_are(model: Path) -> None:
    (model / "requirements.txt").write_text(REQUIREMENTS.replace("numpy==2.4.6", "numpy==1.20.0"))
    serving = serving_environment(str(model), {})
    uv_said = [
        "error: No solution found when resolving dependencies",
        "  cause: Because kserve>=0.21.0 depends on numpy>=1.26.0,<3.0.0 and you require kserve==0.21.0, we can "
        "conclude that you require numpy>=1.26.0,<3.0.0.",
        "         And because you require numpy==1.20.0, we can conclude that your requirements are unsatisfiable.",
    ]
    explained = serving.explain(BuildError("install failed (exit 1)", build_log=uv_said))
    assert isinstance(explained, InputError)
    assert str(explained).startswith("the model needs numpy==1.20.0 (its requirements.txt); the runtime needs numpy")
    other = BuildError("install failed (exit 1)", build_log=["ERROR: No matching distribution found for nosuch==1"])
    assert serving.explain(other) is other


# The step ------------------------------------------------------------------------------


def run_builder(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steps.builder"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_a_model_pin_the_runtime_cannot_share_fails_before_building_naming_both_sides(
    model: Path, tmp_path: Path
) -> None:
    (model / "python_env.yaml").unlink()
    (model / "conda.yaml").unlink()
    (model / "requirements.txt").write_text("mlflow==3.17.2\nboto3==1.20.0\nscikit-learn==1.9.1\n")
    empty = tmp_path / "work"
    empty.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FUSEML_MODEL": str(model),
        "FUSEML_BACKEND": "venv",
        "FUSEML_CACHE_DIR": str(tmp_path / "venvs"),
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "TASK_RESULT": "image",
    }
    done = run_builder(env, empty)
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("builder: error: the model needs boto3==1.20.0 (its requirements.txt); "), last
    assert "the runtime needs boto3==" in last
    assert not (tmp_path / "results" / "image").exists(), "a failed step leaves no result"
    assert not (tmp_path / "venvs").exists() or not any((tmp_path / "venvs").iterdir()), "nothing was built"
    assert list(empty.iterdir()) == [], "no MLproject needed, nothing written where the step runs"
