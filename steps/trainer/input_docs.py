"""The trainer's inputs as ``run --help`` (and the Tekton catalog's params) describe them."""

from common import names
from common.step_help import VERBOSE, InputDoc, StepDoc

DOC = StepDoc(
    step="trainer",
    summary=(
        "Run an MLproject entry point in the image the builder made, with MLflow tracking and S3 artifacts; "
        "returns the logged model's URL."
    ),
    inputs=(
        InputDoc("mlflow_experiment", "experiment to log to (default <org>.<project>, else the codeset folder name)"),
        InputDoc("mlflow_entrypoint", "MLproject entry point (default main)"),
        InputDoc("mlflow_entrypoint_args", "name=value pairs, space or comma separated (alpha=0.4 l1_ratio=0.2)"),
        InputDoc("mlflow_artifact_path", "the name the code logs its model under (default model)"),
        InputDoc(
            "register_model",
            "register the trained model under this name in the MLflow Model Registry; "
            "the output is then models:/<name>/<version>",
        ),
        InputDoc("model_alias", "alias to move to the new model version, e.g. champion (needs register_model)"),
        InputDoc(VERBOSE.name, "true for detailed logs, MLflow's and boto's included (secrets stay masked)"),
    ),
    output="the logged model's URL (the folder holding MLmodel), or models:/<name>/<version> with register_model",
    environment=(
        InputDoc(
            names.MLFLOW_TRACKING_URI, "the tracking server, http://host:port (required; mlflow-tracking extension)"
        ),
        InputDoc(f"{names.MLFLOW_TRACKING_USERNAME}/_PASSWORD", "basic auth for the tracking server; or _TOKEN"),
        InputDoc(names.MLFLOW_S3_ENDPOINT_URL, "S3 endpoint when artifacts go straight to S3 (mlflow-store extension)"),
        InputDoc(f"{names.AWS_ACCESS_KEY_ID}/{names.AWS_SECRET_ACCESS_KEY}", "S3 credentials for those artifacts"),
    ),
)
