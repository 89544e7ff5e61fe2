"""Inputs of the predictor: defaults, the app name, the target, errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError
from steps.predictor.naming import MAX_APP_NAME, dns_name
from steps.predictor.settings import read_settings


def codeset(tmp_path: Path, org: str = "acme", project: str = "Wine Quality") -> Path:
    (tmp_path / ".fuseml").mkdir()
    (tmp_path / ".fuseml" / "_org").write_text(org + "\n")
    (tmp_path / ".fuseml" / "_project").write_text(project + "\n")
    return tmp_path


def test_defaults_outside_a_pod(tmp_path: Path) -> None:
    env = {"FUSEML_MODEL": "s3://b/m", "FUSEML_ENV_WORKFLOW_NAME": "mlflow-e2e", "HOME": str(tmp_path)}
    settings = read_settings(env, codeset(tmp_path))
    assert settings.app_name == "acme-wine-quality-mlflow-e2e"
    assert (settings.target, settings.predictor, settings.namespace) == ("local", "auto", "fuseml-workloads")
    assert settings.state_dir == tmp_path / ".cache" / "fuseml-steps" / "predictor"
    assert settings.timeout == 600 and settings.dry_run is False and settings.resources_limits == {}
    assert settings.workers == "1" and settings.model_store is None


@pytest.mark.parametrize("value", ["3", "auto", "AUTO"])
def test_workers_reach_the_runtime_command_line(tmp_path: Path, value: str) -> None:
    from steps.predictor.targets.serving_process import serve_args

    settings = read_settings({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_WORKERS": value}, tmp_path)
    assert settings.workers == value.lower()
    args = serve_args("m", "w", 9000, 9001, settings.workers)
    assert args[args.index("--workers") + 1] == value.lower() and args[args.index("--grpc-port") + 1] == "9001"


def test_in_a_pod_the_target_is_kserve(tmp_path: Path) -> None:
    env = {"FUSEML_MODEL": "s3://b/m", "FUSEML_APP_NAME": "w", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert read_settings(env, tmp_path).target == "kserve"


def test_inputs_with_dash_spelling_and_a_map(tmp_path: Path) -> None:
    env = {
        "FUSEML_MODEL": "s3://b/m",
        "FUSEML_APP-NAME": "My_App",
        "FUSEML_RESOURCES-LIMITS": "{nvidia.com/gpu: 1}",
        "FUSEML_TARGET": "docker",
        "FUSEML_ENV_WORKFLOW_NAMESPACE": "models",
    }
    settings = read_settings(env, tmp_path)
    assert settings.app_name == "my-app"
    assert settings.resources_limits == {"nvidia.com/gpu": 1}
    assert (settings.target, settings.namespace) == ("docker", "models")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FUSEML_APP_NAME": "w"}, "missing input model: set FUSEML_MODEL"),
        ({"FUSEML_MODEL": "m"}, "no application name"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_TARGET": "k8s"}, "FUSEML_TARGET"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_PREDICTOR": "torch"}, "FUSEML_PREDICTOR"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_TIMEOUT": "0"}, "FUSEML_TIMEOUT"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_WORKERS": "0"}, 'FUSEML_WORKERS="0" is not valid'),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_RESOURCES_LIMITS": "[1]"}, "FUSEML_RESOURCES_LIMITS"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "---"}, "empty application name"),
        ({"FUSEML_MODEL": "m", "FUSEML_APP_NAME": "w", "FUSEML_MODEL_STORE": "/tmp/x"}, 'FUSEML_MODEL_STORE="/tmp/x"'),
    ],
)
def test_bad_inputs_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_settings(env, tmp_path)


def test_dns_names() -> None:
    assert dns_name("42-Org/Project.v2", "x") == "org-project-v2"
    long = dns_name("a" * 100, "x")
    assert len(long) == MAX_APP_NAME and long.startswith("a") and long[-7] == "-"
    assert dns_name("a" * 100, "x") == long  # stable


def test_model_store_is_an_s3_folder(tmp_path: Path) -> None:
    env = {"FUSEML_MODEL": "models:/wine@champion", "FUSEML_APP_NAME": "w", "FUSEML_MODEL_STORE": "s3://b/staged/"}
    assert read_settings(env, tmp_path).model_store == "s3://b/staged"
