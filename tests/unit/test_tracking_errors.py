"""What a failed MLflow call says: refused credentials, a server that does not answer, anything else.

The texts are MLflow's and requests' own wording (mlflow/utils/rest_utils.py ``verify_rest_response``,
urllib3's ``Max retries exceeded``); the servers behind them are exercised in
tests/integration/test_mlflow_guarded_server.py and tests/integration/test_trainer.py.
"""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

from common.errors import InputError, ServiceUnavailable
from common.tracking import translate_tracking_error

URI = "http://admin:s3cret@127.0.0.1:40343"
ENDPOINT = "http://127.0.0.1:40343/api/2.0/mlflow/experiments/get-by-name"


def _translated(error: Exception):
    return translate_tracking_error(error, URI)


@pytest.mark.parametrize(
    "error",
    [
        MlflowException(
            f"API request to endpoint {ENDPOINT} failed with error code 401 != 200. "
            "Response body: 'You are not authenticated.'",
            error_code=UNAUTHENTICATED,
        ),  # fmt: skip
        RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied for experiment 0"}),
        MlflowException(
            f"API request to endpoint {ENDPOINT} failed with error code 403 != 200. Response body: '<html>nope</html>'",
            error_code=PERMISSION_DENIED,
        ),  # fmt: skip
        Exception(f"403 Client Error: Forbidden for url: {ENDPOINT}"),
        Exception(f"401 Client Error: Unauthorized for url: {ENDPOINT}"),
    ],
)
def test_a_refusal_names_the_credential_variables(error: Exception) -> None:
    translated = _translated(error)
    assert isinstance(translated, InputError)
    assert "refused the credentials" in str(translated)
    assert "MLFLOW_TRACKING_PASSWORD" in str(translated) and "s3cret" not in str(translated)


@pytest.mark.parametrize("port", [40343, 40143, 14031, 403])
def test_a_port_holding_401_or_403_is_no_refusal(port: int) -> None:
    """A silent server on port 40343 once read as 'refused the credentials': the port held "403"."""
    endpoint = ENDPOINT.replace("40343", str(port))
    error = MlflowException(
        f"API request to {endpoint} failed with exception HTTPConnectionPool(host='127.0.0.1', port={port}): "
        f"Max retries exceeded with url: /api/2.0/mlflow/experiments/get-by-name "
        f"(Caused by ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port={port}): Read timed out.\"))"
    )
    translated = translate_tracking_error(error, URI.replace("40343", str(port)))
    assert isinstance(translated, ServiceUnavailable)
    assert "does not answer" in str(translated) and "MLFLOW_TRACKING_URI" in str(translated)


def test_anything_else_is_its_first_line_without_the_password() -> None:
    error = MlflowException("RESOURCE_DOES_NOT_EXIST: http://admin:s3cret@host/ said no\nmore detail")
    translated = _translated(error)
    assert isinstance(translated, ServiceUnavailable)
    assert "said no" in str(translated) and "more detail" not in str(translated) and "s3cret" not in str(translated)
