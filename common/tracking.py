"""Talking to an MLflow tracking server: reach it fast or fail fast, with the step's own variables.

MLflow's client retries a dead server for minutes (7 retries, exponential
backoff, 120 s timeouts). A step in a pipeline should say within seconds that
the server does not answer, so the first call is made with a tight budget
(``PROBE``); later calls get bounded defaults the user can still override.
MLflow reads its settings (URI, credentials, budgets) from ``os.environ`` only,
so ``mlflow_environment`` puts a step's ``environ`` there for the length of a
call. Messages never carry a password: URIs are shown with it masked.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping

from common import names
from common.errors import InputError, ServiceUnavailable, StepError

_PASSWORD_IN_URL = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
# How MLflow's client words a refusal: its error codes, and the HTTP status as MLflow and requests print it
# ("failed with error code 401", "403 Client Error"). A bare "401"/"403" is no sign: a port such as 40343 holds one.
_REFUSAL_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_REFUSAL_TEXT = re.compile(
    r"\berror code (?:401|403)\b|\b(?:401|403) Client Error\b|\bUnauthorized\b|"
    r"\bUNAUTHENTICATED\b|\bPERMISSION_DENIED\b"
)

# Bounded defaults for every MLflow HTTP call of a step (and of the trainer's entry point).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# The first contact: two tries of 8 s at most, well under 30 s in all.
PROBE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
}
# What MLflow's HTTP client reads from the environment: taken from the step's environ, or unset.
CLIENT_VARIABLES = (
    names.MLFLOW_TRACKING_URI,
    names.MLFLOW_TRACKING_USERNAME,
    names.MLFLOW_TRACKING_PASSWORD,
    names.MLFLOW_TRACKING_TOKEN,
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)


def require_mlflow(uri: str) -> None:
    """Fail with what to install when MLflow's client is missing (the deploy-only predictor image has none)."""
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError as e:
        raise InputError(
            f"model={without_credentials(uri)}: reading MLflow URIs needs MLflow's client, which is not installed here",
            "pip install mlflow-skinny, or give the model's s3:// URL",
        ) from e


def tracking_uri(environ: Mapping[str, str]) -> str:
    uri = environ.get(names.MLFLOW_TRACKING_URI, "").strip()
    if not uri:
        raise InputError(
            f"{names.MLFLOW_TRACKING_URI} is not set",
            "attach the mlflow-tracking extension, or set it to http://host:port or sqlite:///path/mlflow.db",
        )
    return uri


def bounded_http_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the bounded HTTP defaults added where the user set none."""
    return {**HTTP_DEFAULTS, **environ}


@contextlib.contextmanager
def temporary_env(values: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (``None``: unset) until the block ends."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def mlflow_environment(environ: Mapping[str, str], probe: bool = False) -> contextlib.AbstractContextManager[None]:
    """MLflow's client variables from ``environ`` (not the process's), with the probe or the bounded budget."""
    budget = {**HTTP_DEFAULTS, **{k: v for k, v in environ.items() if k.startswith("MLFLOW_HTTP_REQUEST_")}}
    if probe:
        budget = {**budget, **PROBE}
    client = {name: environ.get(name) or None for name in CLIENT_VARIABLES}
    return temporary_env({**client, **budget})


def translate_tracking_error(error: Exception, uri: str) -> StepError:
    """An MLflow client error as a message that says which setting to check."""
    text = str(error)
    shown = without_credentials(uri)
    if getattr(error, "error_code", None) in _REFUSAL_CODES or _REFUSAL_TEXT.search(text):
        return InputError(
            f"MLflow tracking server {shown} refused the credentials",
            f"check {names.MLFLOW_TRACKING_USERNAME} and {names.MLFLOW_TRACKING_PASSWORD}"
            f" (or {names.MLFLOW_TRACKING_TOKEN})",
        )
    if "Max retries exceeded" in text or "Connection" in text or "timed out" in text.lower():
        return ServiceUnavailable(
            f"MLflow tracking server {shown} does not answer",
            f"check {names.MLFLOW_TRACKING_URI} and that the server runs",
        )
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return ServiceUnavailable(f"MLflow tracking server {shown} failed: {without_credentials(first)}")


def without_credentials(text: str) -> str:
    """``text`` (a URI, or a message quoting one) with the password of any ``scheme://user:password@host`` masked."""
    return _PASSWORD_IN_URL.sub(r"\1****@", text)
