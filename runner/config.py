"""Where the services behind a workflow's extensions are: one small typed config.

FuseML keeps services in its extension registry; locally they come from a YAML
file (``--config``, else ``<state>/config.yaml`` when it exists) and flags,
flags winning. The file's sections are named after the extensions they serve::

    mlflow-tracking:
      uri: http://127.0.0.1:5000        # absent: a sqlite store in the state folder
      username: ...                     # optional
      password: ${MLFLOW_PASSWORD}      # $VAR / ${VAR} are expanded from the environment
      artifacts: proxied                # proxied: the server serves artifacts (steps get no S3 keys);
                                        # direct (default for your own server): steps write to S3
    s3:
      endpoint: http://127.0.0.1:8333   # absent: artifacts in a local folder
      access_key_id: ...
      secret_access_key: ...
      region: us-east-1
    kserve-api:
      target: local                     # local | docker | kserve (default: by executor)
    registry: 127.0.0.1:5000            # where the builder pushes (docker executor)
    namespace: fuseml-workloads
    extensions:                         # any other extension: the variables it sets
      my-feature-store: {FEAST_URL: http://127.0.0.1:6566}

The service stack (``runner.services``) hands over plain environment mappings
(``SeaweedFS.env()``, ``MLflowServer.env()``); ``Config.from_environ`` turns
those into a Config, so the stack and a file end in the same place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from common import names
from common.errors import StepError
from runner.services import MLFLOW_ARTIFACT_MODES

CONFIG_FILE = "config.yaml"
PREDICTOR_TARGETS = ("local", "docker", "kserve")

# File layout: section -> {key in the file: Config field}.


class ConfigError(StepError):
    """The runner's config file is unreadable or has a key we do not know."""


_SECTIONS: dict[str, dict[str, str]] = {
    "mlflow-tracking": {
        "uri": "tracking_uri",
        "username": "tracking_username",
        "password": "tracking_password",
        "artifacts": "mlflow_artifacts",
    },
    "s3": {
        "endpoint": "s3_endpoint_url",
        "access_key_id": "aws_access_key_id",
        "secret_access_key": "aws_secret_access_key",
        "region": "aws_region",
    },
    "kserve-api": {"target": "predictor_target", "core_url": "core_url"},
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_TOP_LEVEL = {"registry": "registry", "pull_registry": "pull_registry", "namespace": "namespace"}


@dataclass(frozen=True)
class Config:
    """Service locations and credentials; None means "not configured, use the local default"."""

    tracking_uri: str | None = None
    tracking_username: str | None = None
    tracking_password: str | None = None
    # "proxied": artifacts go through the tracking server, so the s3 extension hands out the server, and S3
    # keys only to a step that deploys to KServe (it stages models into S3); None or "direct": S3 keys to all.
    mlflow_artifacts: str | None = None
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str | None = None
    predictor_target: str | None = None
    core_url: str | None = None
    registry: str | None = None
    pull_registry: str | None = None
    namespace: str = names.DEFAULT_WORKFLOW_NAMESPACE
    extensions: dict[str, dict[str, str]] = field(default_factory=dict)

    def merged(self, **overrides: Any) -> Config:
        """This config with every override that is not None applied (flags over the file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Config:
        """A config from the variables the extensions would set (e.g. a service's ``env()``)."""
        get = environ.get
        return cls(
            tracking_uri=get(names.MLFLOW_TRACKING_URI) or None,
            tracking_username=get(names.MLFLOW_TRACKING_USERNAME) or None,
            tracking_password=get(names.MLFLOW_TRACKING_PASSWORD) or None,
            s3_endpoint_url=get(names.MLFLOW_S3_ENDPOINT_URL) or None,
            aws_access_key_id=get(names.AWS_ACCESS_KEY_ID) or None,
            aws_secret_access_key=get(names.AWS_SECRET_ACCESS_KEY) or None,
            aws_region=get(names.AWS_DEFAULT_REGION) or get(names.AWS_REGION) or None,
        )

    def secrets(self) -> list[str]:
        """Values that must be masked wherever the runner shows text."""
        values = [self.tracking_password, self.aws_secret_access_key]
        values += [v for env in self.extensions.values() for k, v in env.items() if _is_secret_name(k)]
        return [v for v in values if v]


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """The config in ``path`` (None or a missing default file: an empty config).

    ``environ`` expands ``$VAR`` in values, so secrets can stay out of the file.
    """
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections (mlflow-tracking, s3, kserve-api, ...)")
    return _parse(data, str(path), os.environ if environ is None else environ)


def _parse(data: dict[str, Any], source: str, environ: Mapping[str, str]) -> Config:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a mapping, e.g. {key}: {{...}}")
            for sub, sub_value in value.items():
                if sub not in _SECTIONS[key]:
                    known = ", ".join(_SECTIONS[key])
                    raise ConfigError(f"{source}: unknown key '{key}.{sub}'", hint=f"use one of {known}")
                values[_SECTIONS[key][sub]] = _text(sub_value, environ)
        elif key in _TOP_LEVEL:
            values[_TOP_LEVEL[key]] = _text(value, environ)
        elif key == "extensions":
            values["extensions"] = _extensions(value, source, environ)
        else:
            known = ", ".join([*_SECTIONS, *_TOP_LEVEL, "extensions"])
            raise ConfigError(f"{source}: unknown section '{key}'", hint=f"use one of {known}")
    target = values.get("predictor_target")
    if target is not None and target not in PREDICTOR_TARGETS:
        raise ConfigError(f"{source}: kserve-api.target '{target}' is not one of {', '.join(PREDICTOR_TARGETS)}")
    artifacts = values.get("mlflow_artifacts")
    if artifacts is not None and artifacts not in MLFLOW_ARTIFACT_MODES:
        raise ConfigError(
            f"{source}: mlflow-tracking.artifacts '{artifacts}' is not one of {', '.join(MLFLOW_ARTIFACT_MODES)}"
        )
    known_fields = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in values.items() if k in known_fields})


def _extensions(value: Any, source: str, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConfigError(f"{source}: 'extensions' maps an extension name to its variables {{NAME: value}}")
    return {str(name): {str(k): _text(v, environ) for k, v in env.items()} for name, env in value.items()}


def _text(value: Any, environ: Mapping[str, str]) -> str:
    """A config value as a string, ``$VAR`` and ``${VAR}`` expanded (unknown ones left as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _VARIABLE.sub(lambda m: environ.get(m.group(1) or m.group(2), m.group(0)), str(value))


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    return name in names.SECRET_VARIABLES or any(word in upper for word in names.SECRET_NAME_WORDS)


def start_stack(state_dir: Path, stack: ExitStack, registry: bool = False, artifacts: str = "proxied") -> Config:
    """Start SeaweedFS and an MLflow server (and a registry) on loopback, for as long as
    ``stack`` is open, with their data under ``<state>/stack``; the Config that points at them.

    ``artifacts`` is the server's mode: ``proxied`` (MLflow's default, what users have: the server
    writes artifacts to S3 and the steps need no S3 keys) or ``direct`` (steps write to S3 themselves).
    The S3 service is in the Config either way, for a predictor that stages models for KServe.
    The same launchers the tests use (``runner.services``).
    """
    from runner.services.mlflow_server import MLflowServer
    from runner.services.seaweedfs import SeaweedFS

    root = Path(state_dir) / "stack"
    s3 = stack.enter_context(SeaweedFS(root / "seaweedfs", buckets=("mlflow-artifacts",)))
    mlflow = stack.enter_context(
        MLflowServer(root / "mlflow", s3.env(), artifact_root=f"s3://{s3.bucket}", artifacts=artifacts)
    )
    config = Config.from_environ({**s3.env(), **mlflow.env()}).merged(mlflow_artifacts=artifacts)
    if registry:
        from runner.services.registry import Registry

        local_registry = stack.enter_context(Registry(root / "registry"))
        config = config.merged(registry=local_registry.host)
    return config
