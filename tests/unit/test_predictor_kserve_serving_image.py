"""On KServe, our runtime runs in the serving-builder's image when given, else in its own image if that has
everything the model needs; otherwise the dry run and deploy refuse with the fix (before any pod fails)."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from common.errors import InputError
from steps.predictor.kserve_serving_image import RUNTIME_IMAGE_PINS, runtime_image_lacks
from steps.predictor.model_info import Column, ModelInfo
from steps.predictor.runtime_choice import choose
from steps.predictor.settings import Settings
from steps.predictor.targets.base import DeployPlan
from steps.predictor.targets.kserve import KServeTarget
from tests.fixtures.kube_api import schema_errors

ROOT = Path(__file__).resolve().parents[2]
ENV = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "MLFLOW_S3_ENDPOINT_URL": "http://s3.local:8333"}
WINE_REQUIREMENTS = ("mlflow==3.17.2", "cloudpickle==3.1.3", "numpy==2.4.6", "pandas==2.3.3", "psutil==5.9.8",
                     "scikit-learn==1.9.1", "scipy==1.17.1", "skops==0.16.0")  # fmt: skip
CUSTOM_REQUIREMENTS = ("mlflow==3.17.2", "pandas==2.3.3", "inflection==0.5.1")


def plan(tmp_path: Path, requirements: tuple[str, ...], **changes: object) -> DeployPlan:
    """A custom pyfunc model (always our runtime on KServe) with ``requirements`` beside its MLmodel."""
    info = ModelInfo(
        "s3://b/1/m-1/artifacts", {"python_function": {"loader_module": "mlflow.pyfunc.model"}},
        ("MLmodel", "python_model.pkl", "requirements.txt"), inputs=(Column("x", "double"),),
        requirements=requirements,
    )  # fmt: skip
    settings = Settings(model=info.url, predictor="auto", app_name="custom", target="kserve", namespace="ns",
                        workflow="wf", timeout=60, dry_run=True, state_dir=tmp_path, serving_image="img")  # fmt: skip
    settings = replace(settings, **changes)
    return DeployPlan(settings=settings, info=info, choice=choose(info, "auto"), environ=ENV)


def isvc_model(text: str) -> dict:
    isvc = list(yaml.safe_load_all(text.split("---\n", 1)[1]))[-1]
    assert schema_errors(isvc) == []
    return isvc["spec"]["predictor"]["model"]


def test_the_pins_are_the_serving_extras() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serving"]
    pins = {Requirement(line).name: str(Requirement(line).specifier).removeprefix("==") for line in extra}
    assert pins == RUNTIME_IMAGE_PINS


def test_a_model_our_runtime_image_can_load_keeps_the_runtimes_image(tmp_path: Path) -> None:
    assert runtime_image_lacks(WINE_REQUIREMENTS) == []
    assert "image" not in isvc_model(KServeTarget().describe(plan(tmp_path, WINE_REQUIREMENTS))[0])


@pytest.mark.parametrize(
    ("requirement", "lacking"),
    [("inflection==0.5.1", True), ("scikit-learn==1.8.0", True), ("mlflow==3.16.0", True), ("numpy==1.26.4", False)],
)
def test_only_what_the_image_pins_or_lacks_is_refused(requirement: str, lacking: bool) -> None:
    assert runtime_image_lacks(("mlflow==3.17.2", requirement)) == ([requirement] if lacking else [])


def test_a_model_needing_more_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        KServeTarget().describe(plan(tmp_path, CUSTOM_REQUIREMENTS))
    assert str(error.value).startswith("the model needs inflection==0.5.1, which our runtime's image lacks")
    assert "add a serving-builder step (builder with FUSEML_MODEL) and pass its output as serving_image" in str(
        error.value
    )


def test_serving_env_runtime_deploys_it_anyway_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        text, _ = KServeTarget().describe(plan(tmp_path, CUSTOM_REQUIREMENTS, serving_env="runtime"))
    assert "image" not in isvc_model(text)
    assert "deploying it there anyway, as serving_env=runtime asks" in caplog.text


def test_a_given_serving_image_runs_the_predictor_and_matches_the_schema(tmp_path: Path) -> None:
    given = plan(tmp_path, CUSTOM_REQUIREMENTS, serving_image="127.0.0.1:30500/mlflow/serving:abc",
                 serving_image_given=True)  # fmt: skip
    model = isvc_model(KServeTarget().describe(given)[0])
    assert model["image"] == "127.0.0.1:30500/mlflow/serving:abc"
    assert model["runtime"] == "fuseml-mlflow"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"serving_image": "venv:///v", "serving_image_given": True}, "is a venv, which KServe cannot run"),
        ({"serving_env": "model"}, "serving_env=model on KServe needs the model's own serving image"),
    ],
)
def test_what_kserve_cannot_do_is_refused(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        KServeTarget().describe(plan(tmp_path, WINE_REQUIREMENTS, **changes))
