"""The image our runtime runs in on KServe: the serving-builder's, or the runtime's own if it has what the model needs.

A pod cannot list a remote image's packages, so the model's requirements are
compared with what our runtime image is built with: the pins of pyproject's
``serving`` extra (``RUNTIME_IMAGE_PINS``; tests/unit check they agree) and the
libraries that come with them at the version pip resolved when the image was
built (``RUNTIME_IMAGE_UNPINNED``, taken as matching). A model needing more, or
another version, would fail to load in the pod minutes later; the step refuses
it now with the fix, unless ``serving_env=runtime`` forces the runtime's image
(then it warns). A ``serving_image`` given as input (the serving-builder's
output) replaces the ClusterServingRuntime's image in the InferenceService.
"""

from __future__ import annotations

import logging

from common.errors import InputError
from steps.predictor.model_info import ModelInfo
from steps.predictor.runtime_choice import ServingChoice
from steps.predictor.serving_environment import MODEL, RUNTIME, VENV_SCHEME, missing
from steps.predictor.settings import Settings

log = logging.getLogger(__name__)

# pyproject.toml's `serving` extra: what Dockerfiles/serving.Dockerfile installs, at these versions.
RUNTIME_IMAGE_PINS = {
    "kserve": "0.21.0",
    "mlflow-skinny": "3.17.2",
    "scikit-learn": "1.9.1",
    "skops": "0.16.0",
    "boto3": "1.44.8",
}
# In the image through those pins, at the version pip resolved when it was built.
RUNTIME_IMAGE_UNPINNED = ("numpy", "pandas", "scipy", "cloudpickle", "psutil")
FIX = (
    "add a serving-builder step (builder with FUSEML_MODEL) and pass its output as serving_image, "
    "or set FUSEML_SERVING_ENV=runtime to deploy it anyway"
)


def kserve_serving_image(settings: Settings, info: ModelInfo, choice: ServingChoice) -> str | None:
    """The image the InferenceService's predictor runs instead of its runtime's (None: the runtime's own).

    Raises InputError when our runtime's image lacks a requirement of the model and nothing else is given.
    """
    if not choice.ours:
        return None
    if settings.serving_image_given:
        if settings.serving_image.startswith(VENV_SCHEME):
            raise InputError(
                f"FUSEML_SERVING_IMAGE={settings.serving_image} is a venv, which KServe cannot run",
                "give the image the serving-builder pushed (its docker or buildah backend)",
            )
        log.info("serving environment: serving_image %s, as given (it replaces the runtime's image)",
                 settings.serving_image)  # fmt: skip
        return settings.serving_image
    lacking = runtime_image_lacks(info.requirements)
    if settings.serving_env == MODEL:
        raise InputError("serving_env=model on KServe needs the model's own serving image", FIX.split(", or")[0])
    if not lacking:
        return None
    shown = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
    problem = f"the model needs {shown}, which our runtime's image lacks"
    if settings.serving_env == RUNTIME:
        log.warning("%s: deploying it there anyway, as serving_env=runtime asks (it may fail to load)", problem)
        return None
    raise InputError(problem, FIX)


def runtime_image_lacks(requirements: tuple[str, ...]) -> list[str]:
    """The model's requirement lines our runtime's image does not satisfy."""
    packages: dict[str, str | None] = {**RUNTIME_IMAGE_PINS, **dict.fromkeys(RUNTIME_IMAGE_UNPINNED)}
    return missing(requirements, packages)
