"""Where a model URI really points: every MLflow form resolved to one concrete artifact location.

Users name models as MLflow does: ``s3://…``, ``gs://…``, ``https://…``, a
local path or ``file://…``, ``mlflow-artifacts:/…`` (artifacts proxied by the
tracking server), ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``models:/<name>/latest`` and MLflow 3's
``models:/<model_id>``. The registry and run forms are resolved through the
tracking server (``MlflowClient``: the run, the registered model and its
aliases, ``get_model_version_download_uri``) once, so a deploy serves one exact
version even if the alias moves meanwhile, and knows what it serves (name,
version, run id). Errors name the URI, what was looked up and what to check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from common.errors import InputError, StepError
from common.tracking import (
    mlflow_environment,
    require_mlflow,
    tracking_uri,
    translate_tracking_error,
    without_credentials,
)

# Schemes resolved through the tracking server; the rest are concrete locations.
MLFLOW_SCHEMES = ("mlflow-artifacts", "runs", "models")
# Concrete schemes KServe's storage initializer downloads by itself (the rest must be staged).
KSERVE_READABLE = ("s3", "gs", "https", "http")
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
LATEST = "latest"


@dataclass(frozen=True)
class ModelLocation:
    """A model URI as given, the concrete location behind it, and what the registry knows of it."""

    uri: str
    kind: str  # the scheme as users write it: local, file, s3, gs, https, mlflow-artifacts, runs, models
    artifact_uri: str  # concrete: s3://, gs://, http(s)://, mlflow-artifacts:/, file:// or a path
    name: str | None = None  # registered model name
    version: str | None = None  # registered model version
    run_id: str | None = None
    model_id: str | None = None  # MLflow 3 logged model id

    @property
    def through_mlflow(self) -> bool:
        """Whether the files are reached only through the tracking server (its proxied artifacts, its credentials)."""
        scheme = urlparse(self.artifact_uri).scheme
        return scheme == "mlflow-artifacts" or (self.kind in MLFLOW_SCHEMES and scheme in ("http", "https"))

    @property
    def kserve_readable(self) -> bool:
        """Whether KServe's storage initializer reads the concrete location itself."""
        return urlparse(self.artifact_uri).scheme in KSERVE_READABLE and not self.through_mlflow

    def describe(self) -> str:
        """One line saying what the URI resolved to, for logs and plans."""
        known = [f"{k} {v}" for k, v in (("model", self.name), ("version", self.version), ("run", self.run_id)) if v]
        extra = f" ({', '.join(known)})" if known else ""
        if self.artifact_uri == self.uri:
            return f"{self.uri}{extra}"
        return f"{self.uri} -> {self.artifact_uri}{extra}"


def kind_of(uri: str) -> str:
    scheme = urlparse(uri).scheme
    if scheme == "" or (len(scheme) == 1 and uri[1:3] in (":/", ":\\")):
        return "local"
    return scheme


def split_model_path(uri: str) -> tuple[str, str]:
    """``models:/name@alias/sub/file`` -> (``models:/name@alias``, ``sub/file``); other forms keep their path.

    The registry forms are ``name/<version|latest|stage>``, ``name@alias`` and a
    logged model id; whatever follows is a path inside the model.
    """
    if kind_of(uri) != "models":
        return uri, ""
    parts = urlparse(uri).path.lstrip("/").split("/")
    cut = 1 if ("@" in parts[0] or LOGGED_MODEL_ID.fullmatch(parts[0])) else 2
    return "models:/" + "/".join(parts[:cut]), "/".join(parts[cut:])


def resolve(uri: str, environ: Mapping[str, str]) -> ModelLocation:
    """The concrete location of ``uri``; asks the tracking server for ``runs:/`` and ``models:/``."""
    kind = kind_of(uri)
    if kind not in ("runs", "models"):
        return ModelLocation(uri=uri, kind=kind, artifact_uri=uri)
    server = tracking_uri(environ)
    require_mlflow(uri)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server, registry_uri=server)
    try:
        with mlflow_environment(environ, probe=True):
            if kind == "runs":
                return _resolve_run(client, uri)
            return _resolve_registered(client, uri)
    except MlflowException as e:
        raise _explain(e, uri, server) from e


def _resolve_run(client, uri: str) -> ModelLocation:  # noqa: ANN001 - MlflowClient, imported lazily
    """``runs:/<run_id>/<path>``: the MLflow 3 logged model of that name from the run, else the run's artifacts."""
    parsed = urlparse(uri).path.lstrip("/").split("/", 1)
    run_id, path = parsed[0], (parsed[1] if len(parsed) > 1 else "")
    if not run_id:
        raise InputError(f"model={uri}: not a runs:/ URI", "write it as runs:/<run_id>/<artifact path>")
    run = _lookup(lambda: client.get_run(run_id), f"model={uri}: MLflow has no run {run_id!r}",
                  "check the run id (the trainer's log names it) and MLFLOW_TRACKING_URI")  # fmt: skip
    name, _, inner = path.partition("/")
    if name:
        for model in _run_models(client, run):
            if model.name == name and model.source_run_id == run_id:
                location = _join(model.artifact_location, inner)
                return ModelLocation(uri, "runs", location, run_id=run_id, model_id=model.model_id)
    return ModelLocation(uri, "runs", _join(run.info.artifact_uri, path), run_id=run_id)


def _run_models(client, run) -> list:  # noqa: ANN001
    search = getattr(client, "search_logged_models", None)
    if search is None:  # MLflow 2: models are plain run artifacts
        return []
    return list(search(experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"))


def _resolve_registered(client, uri: str) -> ModelLocation:  # noqa: ANN001
    base, inner = split_model_path(uri)
    parts = base[len("models:/") :].split("/")
    head = parts[0]
    if not head:
        raise InputError(f"model={uri}: not a models:/ URI", "write models:/<name>/<version>, models:/<name>@<alias>")
    if LOGGED_MODEL_ID.fullmatch(head):
        model = _lookup(lambda: client.get_logged_model(head), f"model={uri}: MLflow has no logged model {head!r}",
                        "check the model id and MLFLOW_TRACKING_URI")  # fmt: skip
        location = _join(model.artifact_location, inner)
        return ModelLocation(uri, "models", location, run_id=model.source_run_id, model_id=model.model_id)
    name, _, alias = head.partition("@")
    registered = _lookup(
        lambda: client.get_registered_model(name),
        f"model={uri}: the Model Registry has no model {name!r}",
        "check the name (registered models are listed in the MLflow UI under Models) and MLFLOW_TRACKING_URI",
    )
    version = _version(client, uri, name, registered, alias, parts[1] if len(parts) > 1 else LATEST)
    found = _lookup(lambda: client.get_model_version(name, version), f"model={uri}: {name!r} has no version {version}",
                    "check the version number in the MLflow UI")  # fmt: skip
    location = _join(client.get_model_version_download_uri(name, version), inner)
    return ModelLocation(uri, "models", location, name=name, version=str(version), run_id=found.run_id or None,
                         model_id=getattr(found, "model_id", None))  # fmt: skip


def _version(client, uri: str, name: str, registered, alias: str, suffix: str) -> str:  # noqa: ANN001
    """The exact version ``alias`` or the suffix (a number, ``latest``, or a stage) stands for."""
    if alias:
        aliases = dict(getattr(registered, "aliases", None) or {})
        if alias not in aliases:
            known = ", ".join(f"@{a} (version {v})" for a, v in sorted(aliases.items())) or "none"
            raise InputError(
                f"model={uri}: {name!r} has no alias {alias!r}; its aliases: {known}",
                "set the alias in MLflow (MlflowClient.set_registered_model_alias) or give a version",
            )
        return str(aliases[alias])
    if suffix.isdigit():
        return suffix
    stages = None if suffix.lower() == LATEST else [suffix]
    versions = client.search_model_versions(f"name = '{name}'") if stages is None else []
    if stages is not None:
        versions = client.get_latest_versions(name, stages)
    if not versions:
        where = "no versions" if stages is None else f"no version in stage {suffix!r}"
        raise InputError(f"model={uri}: {name!r} has {where}", "register a version first, or give an existing one")
    return str(max(int(v.version) for v in versions))


def _lookup(call, message: str, hint: str):  # noqa: ANN001, ANN202 - any MLflow getter
    """``call()``, with MLflow's "does not exist" turned into ``message``; other errors go to ``_explain``."""
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(e).lower():
            raise InputError(message, hint) from e
        raise


def _explain(error: Exception, uri: str, server: str) -> StepError:
    if isinstance(error, StepError):
        return error
    translated = translate_tracking_error(error, server)
    translated.message = f"model={without_credentials(uri)}: {translated.message}"
    return translated


def _join(base: str, relative: str) -> str:
    if not relative:
        return base.rstrip("/")
    return base.rstrip("/") + "/" + relative.strip("/")
