"""The predictor's inputs as ``run --help`` (and the Tekton catalog's params) describe them."""

from common import names
from common.step_help import VERBOSE, InputDoc, StepDoc
from steps.predictor.settings import (
    APP_NAME,
    BASE_IMAGE,
    CACHE_DIR,
    DRY_RUN,
    INSTALLER,
    MODEL,
    MODEL_STORE,
    PIP_CA,
    PREDICTOR,
    RESOURCES_LIMITS,
    RUNTIME_VERSION,
    SERVING_ENV,
    SERVING_IMAGE,
    STATE_DIR,
    TARGET,
    TIMEOUT,
    WORKERS,
)

DOC = StepDoc(
    step="predictor",
    summary=(
        "Deploy a model (the trainer's output URL) as a KServe InferenceService speaking the Open Inference "
        "Protocol V2; returns the prediction URL once a real inference answered."
    ),
    inputs=(
        InputDoc(
            MODEL,
            "model: s3://... (the folder holding MLmodel), mlflow-artifacts:/..., runs:/<run_id>/<path>, "
            "models:/<name>/<version> or models:/<name>@<alias> (required)",
        ),
        InputDoc(PREDICTOR, "auto, sklearn, xgboost, mlflow, mlserver, triton or tensorflow (default auto)"),
        InputDoc(APP_NAME, "InferenceService name (default <org>-<project>-<workflow>)"),
        InputDoc(RUNTIME_VERSION, "serving runtime image version"),
        InputDoc(RESOURCES_LIMITS, "YAML/JSON map merged into the predictor's limits, e.g. {nvidia.com/gpu: 1}"),
        InputDoc(TARGET, "kserve (default in a pod), local or docker"),
        InputDoc(TIMEOUT, "seconds to wait for the model to answer (default 600)"),
        InputDoc(DRY_RUN, "true to print the plan and manifests and change nothing"),
        InputDoc(STATE_DIR, "where local/docker deployments keep their state"),
        InputDoc(
            SERVING_IMAGE,
            "docker target, the image that serves the model as it is (e.g. the serving-builder's output); "
            "local target, venv://PATH (default: chosen by serving_env)",
        ),
        InputDoc(
            MODEL_STORE,
            "kserve target, s3://bucket/prefix where models KServe cannot read (mlflow-artifacts:/, runs:/, "
            "models:/ behind the MLflow server) are copied (default s3://mlflow-artifacts/fuseml-models)",
        ),
        InputDoc(WORKERS, "local/docker targets, server processes (a number, or auto for one per CPU; default 1)"),
        InputDoc(
            SERVING_ENV,
            "local/docker targets, the environment that serves the model: auto (the runtime's when it has every "
            "requirement the model names, else the model's own, built once and cached), model or runtime "
            "(default auto)",
        ),
        InputDoc(
            CACHE_DIR,
            "local target, where the model's own serving venvs are kept (default ~/.cache/fuseml/venvs)",
        ),
        InputDoc(BASE_IMAGE, "docker target, base of the model's own serving image (default python:3.11-slim)"),
        InputDoc(
            PIP_CA,
            "CA bundle pip needs behind a TLS-intercepting proxy, to build a model's own environment "
            "(default $PIP_CERT)",
        ),
        InputDoc(INSTALLER, "auto (uv, pip as the fallback), uv or pip: what installs a model's own environment"),
        VERBOSE,
    ),
    output="the V2 prediction URL (.../v2/models/NAME/infer)",
    environment=(
        InputDoc(names.MLFLOW_TRACKING_URI, "the tracking server, for mlflow-artifacts:/, runs:/ and models:/ models"),
        InputDoc(f"{names.MLFLOW_TRACKING_USERNAME}/_PASSWORD", "basic auth for the tracking server; or _TOKEN"),
        InputDoc(names.MLFLOW_S3_ENDPOINT_URL, "S3 endpoint of the model store (mlflow-store extension)"),
        InputDoc(f"{names.AWS_ACCESS_KEY_ID}/{names.AWS_SECRET_ACCESS_KEY}", "S3 credentials to read the model"),
        InputDoc("KUBECONFIG", "cluster to deploy to outside a pod (default ~/.kube/config)"),
        InputDoc(
            names.WORKFLOW_NAMESPACE, f"namespace of the InferenceService (default {names.DEFAULT_WORKFLOW_NAMESPACE})"
        ),
    ),
)
