"""A model's serving environment, without building it: the spec from MLflow's files, the runtime's lines,
conflicts named from both sides, the tag, and the serving kind's payload beside the trainer's."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.build_log import BuildError
from common.build_payload import SERVING, TRAINER, builder_version, kind_code, payload, run_script, write_context
from common.envspec import EnvSpec
from common.errors import InputError
from common.serving_env import runtime_requirements, serving_spec, serving_tag
from common.serving_env_conflicts import reframe_build_error

ROOT = Path(__file__).resolve().parents[2]

# What mlflow 3.17 writes beside MLmodel for a scikit-learn model (mlflow.sklearn.save_model).
PYTHON_ENV = """python: 3.11.7
build_dependencies:
- pip==24.0
- setuptools==69.0.3
- wheel==0.42.0
dependencies:
- -r requirements.txt
"""
REQUIREMENTS = """mlflow==3.17.2
cloudpickle==3.1.1
numpy==2.3.4
pandas==2.3.3
scikit-learn==1.9.1
scipy==1.16.3
"""
CONDA = """channels:
- conda-forge
dependencies:
- python=3.11.7
- pip<=24.0
- pip:
  - mlflow==3.17.2
  - cloudpickle==3.1.1
  - numpy==2.3.4
  - pandas==2.3.3
  - scikit-learn==1.9.1
  - scipy==1.16.3
name: mlflow-env
"""


def model_dir(tmp_path: Path, requirements: str = REQUIREMENTS, name: str = "model", **files: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    for file, text in {"python_env.yaml": PYTHON_ENV, "requirements.txt": requirements, "conda.yaml": CONDA}.items():
        (folder / file).write_text(files.get(file.replace(".", "_"), text))
    return folder


def test_the_spec_is_the_models_requirements_plus_the_runtimes(tmp_path: Path) -> None:
    spec = serving_spec(model_dir(tmp_path))
    assert spec.python == "3.11" and spec.source == "the model's python_env.yaml"
    assert spec.build_dependencies == ("pip==24.0", "setuptools==69.0.3", "wheel==0.42.0")
    assert set(spec.requirements) == {
        "mlflow-skinny==3.17.2",
        "cloudpickle==3.1.1",
        "numpy==2.3.4",
        "pandas==2.3.3",
        "scikit-learn==1.9.1",
        "scipy==1.16.3",
        "kserve==0.21.0",
        "boto3==1.44.8",
    }
    assert "mlflow==3.17.2" not in spec.requirements, "the runtime needs no MLflow server"
    assert set(runtime_requirements()) == {"kserve==0.21.0", "mlflow-skinny==3.17.2", "boto3==1.44.8"}


def test_requirements_txt_alone_and_conda_yaml_alone_are_read_too(tmp_path: Path) -> None:
    from_python_env = serving_spec(model_dir(tmp_path))
    only_requirements = model_dir(tmp_path, name="reqs")
    (only_requirements / "python_env.yaml").unlink()
    (only_requirements / "conda.yaml").unlink()
    only_conda = model_dir(tmp_path, name="conda")
    (only_conda / "python_env.yaml").unlink()
    (only_conda / "requirements.txt").unlink()
    assert serving_spec(only_requirements).requirements == from_python_env.requirements
    conda = serving_spec(only_conda)
    assert conda.python == "3.11" and set(from_python_env.requirements) <= set(conda.requirements)


def test_the_models_mlflow_version_wins_over_the_runtimes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    spec = serving_spec(model_dir(tmp_path, REQUIREMENTS.replace("mlflow==3.17.2", "mlflow==3.10.0")))
    assert [r for r in spec.requirements if r.startswith("mlflow")] == ["mlflow-skinny==3.10.0"]
    assert not any(c.startswith("mlflow") for c in spec.constraints)
    assert "served with mlflow-skinny==3.10.0 (the runtime needs no MLflow server or UI)" in caplog.text


def test_a_package_both_name_keeps_the_models_line_and_the_runtimes_as_a_constraint(tmp_path: Path) -> None:
    spec = serving_spec(model_dir(tmp_path, REQUIREMENTS + "boto3>=1.30\n"))
    assert "boto3>=1.30" in spec.requirements and "boto3==1.44.8" not in spec.requirements
    assert "boto3==1.44.8" in spec.constraints


def test_a_direct_conflict_names_both_sides(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        serving_spec(model_dir(tmp_path, REQUIREMENTS + "kserve==0.9.0\n"))
    message = str(caught.value)
    assert message.startswith(
        "the model needs kserve==0.9.0 (its requirements.txt); "
        "the runtime needs kserve==0.21.0 (serving/requirements.txt)"
    )
    assert "\n" not in message


# What uv 0.13 prints for a model pinning numpy below what kserve needs (copied from a real run).
UV_CONFLICT = [
    "Using Python 3.11.7 environment at: /cache/t/bin/python",
    "error: No solution found when resolving dependencies",
    "  cause: Because kserve>=0.21.0 depends on numpy>=1.26.0,<3.0.0 and you require kserve==0.21.0, we can "
    "conclude that you require numpy>=1.26.0,<3.0.0.",
    "         And because you require numpy==1.20.0, we can conclude that your requirements are unsatisfiable.",
    "error: input installer=uv, but uv failed (exit 1); set installer to auto or pip",
]
PIP_CONFLICT = [
    "ERROR: Cannot install kserve==0.21.0 and numpy==1.20.0 because these package versions have conflicting "
    "dependencies.",
    "The conflict is caused by:",
    "    The user requested numpy==1.20.0",
    "    kserve 0.21.0 depends on numpy<3.0.0 and >=1.26.0",
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/",
]


@pytest.mark.parametrize(
    "log_lines,theirs", [(UV_CONFLICT, "numpy>=1.26.0,<3.0.0"), (PIP_CONFLICT, "numpy<3.0.0,>=1.26.0")]
)
def test_an_installer_conflict_is_reframed_with_both_sides(log_lines: list[str], theirs: str) -> None:
    spec = EnvSpec(source="x", requirements=("boto3==1.44.8", "kserve==0.21.0", "numpy==1.20.0"))
    error = BuildError("install failed (exit 1): ...", build_log=log_lines)
    reframed = reframe_build_error(error, spec, runtime_requirements(), "requirements.txt")
    assert isinstance(reframed, InputError)
    assert str(reframed).startswith(
        f"the model needs numpy==1.20.0 (its requirements.txt); the runtime needs {theirs} (kserve==0.21.0); "
        "the installer says: "
    )
    said = str(reframed).split("the installer says: ")[1]
    assert "numpy==1.20.0" in said, "the installer's own words are kept"
    assert "installer=uv" not in said and "\n" not in said, "install.sh's own line is not the resolver's"


def test_a_build_that_failed_otherwise_keeps_its_error() -> None:
    error = BuildError("install failed", build_log=["ERROR: No matching distribution found for nosuch==1"])
    assert reframe_build_error(error, EnvSpec(source="x"), runtime_requirements(), "requirements.txt") is error


def test_the_tag_is_stable_under_order_and_comments_and_follows_the_requirements(tmp_path: Path) -> None:
    def tag(requirements: str, name: str) -> str:
        return serving_tag(serving_spec(model_dir(tmp_path, requirements, name)), "python 3.11.7 /usr", "linux/x86_64")

    first = tag(REQUIREMENTS, "a")
    shuffled = "# written by hand\n" + "\n".join(reversed(REQUIREMENTS.splitlines())) + "\n\n"
    assert tag(shuffled, "b") == first
    assert tag(REQUIREMENTS.replace("numpy==2.3.4", "numpy==2.3.3"), "c") != first
    assert serving_tag(serving_spec(tmp_path / "a"), "python 3.11.7 /usr", "linux/aarch64") != first


def test_the_serving_payload_is_the_runtime_and_what_it_imports_and_nothing_of_the_trainer() -> None:
    code = kind_code(SERVING)
    assert {"serving/__main__.py", "serving/model.py", "common/logs.py", "common/errors.py"} <= set(code)
    assert not any(name.startswith("steps/") for name in code)
    assert not any(name.startswith("serving/") for name in kind_code(TRAINER))
    served, trained = payload(SERVING), payload(TRAINER)
    assert served["Dockerfile"] == (ROOT / "Dockerfiles" / "serving-env.Dockerfile").read_bytes()
    assert b"-m serving " in served["build/run"] and b"-m steps.trainer " in trained["build/run"]
    assert builder_version(SERVING) != builder_version(TRAINER)
    assert builder_version(SERVING) == builder_version(SERVING), "hashed the same each time"


def test_the_serving_payload_is_found_where_an_image_carries_it_and_hashes_the_same(tmp_path: Path) -> None:
    """The predictor image keeps serving/ under payload/, off its import path: same files, same version."""
    import shutil

    root = tmp_path / "image"
    for part in ("common", "Dockerfiles"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "serving", root / "payload" / "serving", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (root / "serving").exists()
    assert builder_version(SERVING, root) == builder_version(SERVING)
    (root / "payload" / "serving" / "model.py").write_text("# edited\n", encoding="utf-8")
    assert builder_version(SERVING, root) != builder_version(SERVING), "an edit of the carried runtime counts"


def test_the_serving_context_and_run_script(tmp_path: Path) -> None:
    spec = EnvSpec(source="x", requirements=("kserve==0.21.0",))
    context = write_context(tmp_path / "ctx", spec, None, "auto", None, SERVING)
    assert (context / "app" / "serving" / "__main__.py").is_file() and not (context / "app" / "steps").exists()
    assert (context / "build" / "requirements.txt").read_text() == "kserve==0.21.0\n"
    text = (context / "Dockerfile").read_text()
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert 'ENTRYPOINT ["run"]' in final and "USER 1000" in final and "EXPOSE 8080" in final
    assert "build/" not in final and "pip-ca" not in final and "__pycache__" not in final
    assert run_script("/v", SERVING).endswith('exec /v/bin/python -m serving "$@"\n')
