"""Every external name the steps read or write, spelled once.

The contract (see docs/contract.md) fixes these names: FuseML turns workflow inputs
into ``FUSEML_<NAME>`` variables and extensions into their usual variables.
"""

from __future__ import annotations

INPUT_PREFIX = "FUSEML_"

# Contract plumbing.
TASK_RESULT = "TASK_RESULT"
RESULTS_DIR = "FUSEML_RESULTS_DIR"
DEFAULT_RESULTS_DIR = "/tekton/results"
VERBOSE = "FUSEML_VERBOSE"
WORKFLOW_NAME = "FUSEML_ENV_WORKFLOW_NAME"
WORKFLOW_NAMESPACE = "FUSEML_ENV_WORKFLOW_NAMESPACE"
DEFAULT_WORKFLOW_NAMESPACE = "fuseml-workloads"
CORE_URL = "FUSEML_CORE_URL"

# Extensions.
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
MLFLOW_TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"
MLFLOW_TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
MLFLOW_TRACKING_TOKEN = "MLFLOW_TRACKING_TOKEN"
MLFLOW_S3_ENDPOINT_URL = "MLFLOW_S3_ENDPOINT_URL"
MLFLOW_S3_IGNORE_TLS = "MLFLOW_S3_IGNORE_TLS"
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
AWS_REGION = "AWS_REGION"
AWS_CA_BUNDLE = "AWS_CA_BUNDLE"

# Variables whose values never appear in any output.
SECRET_VARIABLES = (
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    MLFLOW_TRACKING_PASSWORD,
    MLFLOW_TRACKING_TOKEN,
)
# Any other variable whose name contains one of these words is a secret too.
SECRET_NAME_WORDS = ("PASSWORD", "SECRET", "TOKEN", "APIKEY", "API_KEY", "CREDENTIAL")


def input_variable(name: str) -> str:
    """The variable FuseML sets for workflow input ``name``: upper-cased, nothing else."""
    return INPUT_PREFIX + name.upper()


# Telemetry switches of the libraries the steps run (MLflow's, and the cross-tool convention).
MLFLOW_DISABLE_TELEMETRY = "MLFLOW_DISABLE_TELEMETRY"
DO_NOT_TRACK = "DO_NOT_TRACK"
