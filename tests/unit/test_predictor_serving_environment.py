"""Which environment serves a model on the local and docker targets: the decision, from real model files.

The runtime's packages are given as a mapping (what ``importlib.metadata`` or the
serving image lists), so each case states exactly what the runtime has.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from common.errors import InputError
from steps.predictor.serving_environment import decide, installed_here, missing, model_requirements
from steps.predictor.settings import DEFAULT_BASE_IMAGE, read_settings

RUNTIME = {"mlflow-skinny": "3.17.2", "numpy": "2.4.6", "pandas": "2.3.3", "cloudpickle": "3.1.3"}


def settings(tmp_path: Path, **inputs: str):
    environ = {
        "FUSEML_MODEL": "s3://b/m",
        "FUSEML_APP_NAME": "app",
        "HOME": str(tmp_path),
        "FUSEML_STATE_DIR": str(tmp_path / "state"),
    }
    environ.update({f"FUSEML_{k.upper()}": v for k, v in inputs.items()})
    return read_settings(environ, cwd=tmp_path)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder as MLflow writes it: python_env.yaml naming requirements.txt."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "python_env.yaml").write_text(
        f"python: {sys.version_info.major}.{sys.version_info.minor}\nbuild_dependencies:\n- pip\n"
        "dependencies:\n- -r requirements.txt\n"
    )
    (folder / "requirements.txt").write_text("mlflow==3.17.2\ncloudpickle==3.1.3\ninflection==0.5.1\n")
    return folder


def test_requirements_are_read_as_mlflow_wrote_them_with_mlflow_as_mlflow_skinny(model_dir: Path) -> None:
    assert set(model_requirements(model_dir)) == {"mlflow-skinny==3.17.2", "cloudpickle==3.1.3", "inflection==0.5.1"}


@pytest.mark.parametrize(
    ("requirement", "installed", "satisfied"),
    [
        ("numpy==2.4.6", {"numpy": "2.4.6"}, True),
        ("numpy==2.4.6", {"numpy": "2.4.5"}, False),
        ("numpy>=2,<3", {"NumPy": "2.4.6"}, True),
        ("xgboost==3.1.1", {"numpy": "2.4.6"}, False),
        ("scikit_learn==1.9.1", {"scikit-learn": "1.9.1"}, True),
        ("mlflow==3.17.2", {"mlflow-skinny": "3.17.2"}, True),
        ("mlflow-skinny==3.17.2", {"mlflow": "3.17.2"}, True),
        ("mlflow==3.17.2", {"mlflow-skinny": "3.16.0"}, False),
        ('pywin32==306; sys_platform == "win32"', {}, True),
        ("git+https://example.invalid/pkg.git", {"pkg": "1"}, False),
    ],
)
def test_a_requirement_is_satisfied_only_by_a_matching_installed_version(
    requirement: str, installed: dict[str, str], satisfied: bool
) -> None:
    assert missing([requirement], installed) == ([] if satisfied else [requirement])


def test_this_interpreter_lists_its_own_packages() -> None:
    packages = installed_here()
    assert "mlflow-skinny" in {name.lower() for name in packages}
    assert not missing(["packaging"], packages)


def test_auto_serves_in_the_runtime_when_it_has_every_requirement(model_dir: Path, tmp_path: Path) -> None:
    environment = decide(settings(tmp_path), "local", model_dir, {**RUNTIME, "inflection": "0.5.1"})
    assert (environment.kind, environment.python) == ("runtime", sys.executable)
    assert "has all 3 requirements of the model" in environment.describe()


def test_auto_builds_the_models_own_environment_for_a_package_the_runtime_lacks(
    model_dir: Path, tmp_path: Path
) -> None:
    environment = decide(settings(tmp_path), "local", model_dir, RUNTIME)
    assert (environment.kind, environment.python, environment.model_dir) == ("model", None, model_dir)
    assert environment.reason == "the model needs inflection==0.5.1, which the runtime's environment lacks"


def test_auto_on_docker_compares_with_the_serving_images_packages(model_dir: Path, tmp_path: Path) -> None:
    runtime = decide(settings(tmp_path, serving_env="auto"), "docker", model_dir, {**RUNTIME, "inflection": "0.5.1"})
    assert (runtime.kind, runtime.image) == ("runtime", "ghcr.io/fuseml-steps/mlflow-serving:0.1.0")
    own = decide(settings(tmp_path), "docker", model_dir, {**RUNTIME, "inflection": "0.4.0"})
    assert (own.kind, own.image) == ("model", None)


def test_forced_modes_ignore_the_comparison(model_dir: Path, tmp_path: Path) -> None:
    forced_runtime = decide(settings(tmp_path, serving_env="runtime"), "local", model_dir, RUNTIME)
    assert (forced_runtime.kind, forced_runtime.python) == ("runtime", sys.executable)
    assert "as serving_env=runtime asks" in forced_runtime.reason
    forced_model = decide(
        settings(tmp_path, serving_env="model"), "docker", model_dir, {**RUNTIME, "inflection": "0.5.1"}
    )
    assert (forced_model.kind, forced_model.model_dir) == ("model", model_dir)


def test_a_venv_given_as_serving_image_serves_on_the_local_target(model_dir: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venvs" / "abc"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    environment = decide(settings(tmp_path, serving_image=f"venv://{venv}"), "local", model_dir, RUNTIME)
    assert (environment.kind, environment.python) == ("given", str(venv / "bin" / "python"))


def test_a_venv_that_is_not_there_is_refused_naming_it(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"FUSEML_SERVING_IMAGE=venv://.*/gone: .*/gone/bin/python does not exist"):
        decide(settings(tmp_path, serving_image=f"venv://{tmp_path}/gone"), "local", model_dir, RUNTIME)


def test_docker_cannot_run_a_venv(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a venv, which the docker target cannot run"):
        decide(settings(tmp_path, serving_image="venv:///x"), "docker", model_dir, RUNTIME)


def test_a_given_image_serves_on_docker_as_it_is_and_is_ignored_by_local(model_dir: Path, tmp_path: Path) -> None:
    given = decide(settings(tmp_path, serving_image="registry:5000/mlflow/serving:abc"), "docker", model_dir, {})
    assert (given.kind, given.image) == ("given", "registry:5000/mlflow/serving:abc")
    local = decide(settings(tmp_path, serving_image="registry:5000/mlflow/serving:abc"), "local", model_dir, RUNTIME)
    assert local.kind == "model"


def test_build_inputs_take_the_builders_names_and_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert (s.serving_env, s.base_image, s.installer, s.pip_ca) == ("auto", DEFAULT_BASE_IMAGE, "auto", None)
    assert s.cache_dir == tmp_path / ".cache" / "fuseml" / "venvs"
    assert not s.serving_image_given
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    given = read_settings(
        {
            "FUSEML_MODEL": "m",
            "FUSEML_APP_NAME": "app",
            "FUSEML_CACHE_DIR": str(tmp_path / "c"),
            "PIP_CERT": str(ca),
            "FUSEML_INSTALLER": "pip",
        },
        cwd=tmp_path,
    )
    assert (given.cache_dir, given.pip_ca, given.installer) == (tmp_path / "c", ca, "pip")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"FUSEML_SERVING_ENV": "conda"}, "FUSEML_SERVING_ENV"),
        ({"FUSEML_PIP_CA": "/no/such/ca.pem"}, "FUSEML_PIP_CA=/no/such/ca.pem is not a file"),
        ({"FUSEML_INSTALLER": "poetry"}, "FUSEML_INSTALLER"),
    ],
)
def test_bad_build_inputs_are_refused_naming_the_variable(inputs: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        read_settings({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "app", **inputs}, cwd=tmp_path)
