"""The predictor's inputs, read once at the entrypoint into one typed value.

Contract inputs (docs/contract.md): model, predictor, app_name, runtime_version,
resources_limits, verbose. Ours: target, timeout, dry_run, state_dir,
serving_image, workers, model_store, serving_env, and what building a model's own
serving environment needs: cache_dir, base_image, pip_ca, installer (the builder's
names and defaults, so one workflow's ``env`` serves both steps). Names are spelled
here once; values go down as ``Settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common import names
from common.codeset import Codeset
from common.errors import InputError
from common.inputs import Inputs
from common.installer import INSTALLERS
from steps.predictor.naming import default_app_name, dns_name
from steps.predictor.runtime_choice import AUTO, PREDICTOR_CHOICES

# Input names (FUSEML_<NAME>).
MODEL = "model"
PREDICTOR = "predictor"
APP_NAME = "app_name"
RUNTIME_VERSION = "runtime_version"
RESOURCES_LIMITS = "resources_limits"
TARGET = "target"
TIMEOUT = "timeout"
DRY_RUN = "dry_run"
STATE_DIR = "state_dir"
SERVING_IMAGE = "serving_image"
WORKERS = "workers"
MODEL_STORE = "model_store"
SERVING_ENV = "serving_env"
CACHE_DIR = "cache_dir"
BASE_IMAGE = "base_image"
PIP_CA = "pip_ca"
INSTALLER = "installer"

TARGETS = ("kserve", "local", "docker")
KUBERNETES_SERVICE_HOST = "KUBERNETES_SERVICE_HOST"
DEFAULT_TIMEOUT = 600
DEFAULT_SERVING_IMAGE = "ghcr.io/fuseml-steps/mlflow-serving:0.1.0"  # Dockerfiles/serving.Dockerfile (make images)
# Which environment serves the model on the local and docker targets (steps/predictor/serving_environment.py).
SERVING_ENVS = ("auto", "model", "runtime")
DEFAULT_BASE_IMAGE = "python:3.11-slim"  # the builder's default base (steps/builder/settings.py)
PIP_CERT = "PIP_CERT"


@dataclass(frozen=True)
class Settings:
    """Everything the predictor was asked to do."""

    model: str
    predictor: str
    app_name: str
    target: str
    namespace: str
    workflow: str
    timeout: int
    dry_run: bool
    state_dir: Path
    serving_image: str
    runtime_version: str | None = None
    resources_limits: dict[str, Any] = field(default_factory=dict)
    core_url: str | None = None
    org: str | None = None
    project: str | None = None
    workers: str = "1"  # local and docker: the runtime's --workers (a number, or auto)
    model_store: str | None = None  # kserve: s3://bucket/prefix for models KServe cannot read where they are
    serving_image_given: bool = False  # serving_image was an input (else the default runtime image)
    serving_env: str = "auto"  # auto, model or runtime: which environment serves the model
    cache_dir: Path = Path("~/.cache/fuseml/venvs")  # local target: where the model's own venvs are kept
    base_image: str = DEFAULT_BASE_IMAGE  # docker target: base of the model's own serving image
    pip_ca: Path | None = None  # CA bundle pip needs to build an environment
    installer: str = "auto"  # auto, uv or pip


def read_settings(environ: Mapping[str, str], cwd: Path | None = None) -> Settings:
    """Read and check every input; errors name the variable to fix."""
    inputs = Inputs(environ)
    cwd = cwd or Path.cwd()
    workflow = environ.get(names.WORKFLOW_NAME, "").strip()
    codeset = Codeset(cwd)
    org, project = codeset.org, codeset.project
    if inputs.is_set(APP_NAME):
        app_name = dns_name(inputs.str(APP_NAME), f"input {inputs.variable(APP_NAME)}")
    else:
        app_name = default_app_name(org, project, workflow)
    default_target = "kserve" if environ.get(KUBERNETES_SERVICE_HOST) else "local"
    return Settings(
        model=inputs.str(MODEL),
        predictor=inputs.choice(PREDICTOR, PREDICTOR_CHOICES, AUTO),
        app_name=app_name,
        target=inputs.choice(TARGET, TARGETS, default_target),
        namespace=environ.get(names.WORKFLOW_NAMESPACE, "").strip() or names.DEFAULT_WORKFLOW_NAMESPACE,
        workflow=workflow,
        timeout=inputs.int(TIMEOUT, DEFAULT_TIMEOUT, minimum=1),
        dry_run=inputs.bool(DRY_RUN, False),
        state_dir=state_dir(environ),
        serving_image=inputs.str(SERVING_IMAGE, DEFAULT_SERVING_IMAGE),
        runtime_version=inputs.str(RUNTIME_VERSION, None),
        resources_limits=inputs.map(RESOURCES_LIMITS, {}),
        core_url=environ.get(names.CORE_URL, "").strip() or None,
        org=org,
        project=project,
        workers=_workers(inputs),
        model_store=_model_store(inputs),
        serving_image_given=inputs.is_set(SERVING_IMAGE),
        serving_env=inputs.choice(SERVING_ENV, SERVING_ENVS, "auto"),
        cache_dir=_cache_dir(inputs, environ),
        base_image=inputs.str(BASE_IMAGE, DEFAULT_BASE_IMAGE),
        pip_ca=_pip_ca(inputs, environ),
        installer=inputs.choice(INSTALLER, INSTALLERS, "auto"),
    )


def _workers(inputs: Inputs) -> str:
    value = inputs.str(WORKERS, "1").lower()
    if value == "auto" or (value.isdigit() and int(value) >= 1):
        return value
    raise InputError(
        f'{inputs.variable(WORKERS)}="{value}" is not valid',
        "give the number of server processes (1 or more), or auto for one per CPU",
    )


def _model_store(inputs: Inputs) -> str | None:
    value = inputs.str(MODEL_STORE, None)
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InputError(
            f'{inputs.variable(MODEL_STORE)}="{value}" is not an s3://bucket/prefix URL',
            "give the S3 folder where models KServe cannot read directly are copied to",
        )
    return value.rstrip("/")


def _cache_dir(inputs: Inputs, environ: Mapping[str, str]) -> Path:
    """The builder's venv cache (input cache_dir, else ``$XDG_CACHE_HOME/fuseml/venvs``): one cache for both steps."""
    given = inputs.str(CACHE_DIR, None)
    if given:
        return Path(given).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or str(Path.home()), ".cache")
    return Path(base) / "fuseml" / "venvs"


def _pip_ca(inputs: Inputs, environ: Mapping[str, str]) -> Path | None:
    value = inputs.str(PIP_CA, None) or environ.get(PIP_CERT, "").strip() or None
    if value is None:
        return None
    where = inputs.variable(PIP_CA) if inputs.is_set(PIP_CA) else PIP_CERT
    if not Path(value).is_file():
        raise InputError(f"{where}={value} is not a file", f"give the path of a PEM CA bundle, or unset {where}")
    return Path(value)


def state_dir(environ: Mapping[str, str]) -> Path:
    """The state folder: input ``state_dir``, else ``default_state_dir``; also where ``fuseml-steps apps`` looks."""
    return Path(Inputs(environ).str(STATE_DIR, str(default_state_dir(environ)))).expanduser()


def default_state_dir(environ: Mapping[str, str]) -> Path:
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or str(Path.home()), ".cache")
    return Path(cache) / "fuseml-steps" / "predictor"
