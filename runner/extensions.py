"""A step's extensions turned into the variables FuseML would give it.

FuseML looks each extension up in its registry and sets the service's
variables on the step. Here the services come from the runner's Config; when
one is not configured the runner falls back to something that needs nothing:

- ``mlflow-tracking``: ``MLFLOW_TRACKING_URI`` (and username/password). Default:
  a sqlite store in the state folder, artifacts in a folder beside it.
- ``s3``: ``MLFLOW_S3_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``. Default: nothing (the
  artifacts are local files, see above). With a tracking server that proxies
  artifacts (``mlflow_artifacts: proxied``) the store of MLflow's artifacts is
  that server: the extension gives its tracking variables instead, and the S3
  keys only to a step that deploys to KServe (the predictor stages models into
  S3 there), so the training code never holds S3 credentials.
- ``kserve-api``: where the predictor deploys: input ``target`` (``local`` for
  the process executor, ``docker`` for the docker executor, or the config's),
  and ``FUSEML_CORE_URL`` when configured.
- anything else: the variables the config lists under ``extensions.<name>``.

An extension is matched on its ``service_resource`` when given, else its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from common import names
from common.errors import StepError
from runner.config import Config
from runner.workflow import Extension, Step

log = logging.getLogger(__name__)

MLFLOW_TRACKING = "mlflow-tracking"
S3 = "s3"
KSERVE_API = "kserve-api"
KNOWN = (MLFLOW_TRACKING, S3, KSERVE_API)
PROXIED = "proxied"

# Where the local tracking store lives inside the state folder.
LOCAL_MLFLOW_DIR = "mlflow"
# MLflow gives a sqlite store created by a client the artifact root "./mlruns"
# (relative to the step's working directory, our throwaway codeset copy) unless
# this variable, which ``mlflow server`` sets for itself, names one.
MLFLOW_ARTIFACT_ROOT_VARIABLE = "_MLFLOW_SERVER_ARTIFACT_ROOT"
PREDICTOR_TARGET_INPUT = names.input_variable("target")


class ExtensionError(StepError):
    """A step needs an extension the runner has no service for."""


@dataclass
class ExtensionSetup:
    """What a step's extensions add: variables, and host folders a container must see.

    ``cfg`` keeps each extension's own variables apart, by extension name: FuseML's
    ``{{ extensions.<name>.cfg.<VARIABLE> }}`` reads one of them (two extensions may
    both set ``AWS_ACCESS_KEY_ID``; the step's env holds the last one's).
    """

    env: dict[str, str] = field(default_factory=dict)
    shared_paths: list[Path] = field(default_factory=list)
    cfg: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, extension: str, variable: str, step: str) -> str:
        """The value ``{{ extensions.<extension>.cfg.<variable> }}`` stands for in ``step``."""
        try:
            return self.cfg[extension][variable]
        except KeyError:
            given = ", ".join(sorted(self.cfg.get(extension, {}))) or "none"
            raise ExtensionError(
                f"step '{step}' uses extensions.{extension}.cfg.{variable}, which extension '{extension}' "
                f"does not set here (it sets: {given})",
                hint=f"configure that service (see fuseml-steps run --help), or list the variable in the config "
                f"under 'extensions: {{{extension}: {{{variable}: value}}}}'",
            ) from None


def local_tracking(state_dir: Path) -> tuple[str, Path]:
    """The default tracking URI and artifact folder under ``state_dir``."""
    folder = state_dir.resolve() / LOCAL_MLFLOW_DIR
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


def step_extensions(step: Step, config: Config, state_dir: Path, default_target: str) -> ExtensionSetup:
    """The variables for all of ``step``'s extensions, in the order they are listed."""
    setup = ExtensionSetup()
    for extension in step.extensions:
        own = ExtensionSetup()
        _add(own, extension, step, config, state_dir, default_target)
        setup.env.update(own.env)
        setup.shared_paths += [p for p in own.shared_paths if p not in setup.shared_paths]
        setup.cfg[extension.name] = own.env
    return setup


def _add(
    setup: ExtensionSetup, extension: Extension, step: Step, config: Config, state_dir: Path, default_target: str
) -> None:
    kind = extension.kind
    env = setup.env
    if kind in config.extensions or extension.name in config.extensions:
        env.update(config.extensions.get(kind) or config.extensions[extension.name])
    elif kind == MLFLOW_TRACKING:
        if config.tracking_uri:
            _set_tracking(env, config)
        else:
            uri, artifacts = local_tracking(state_dir)
            artifacts.mkdir(parents=True, exist_ok=True)
            env[names.MLFLOW_TRACKING_URI] = uri
            env[MLFLOW_ARTIFACT_ROOT_VARIABLE] = str(artifacts)
            setup.shared_paths.append(artifacts.parent)
    elif kind == S3 and config.mlflow_artifacts == PROXIED and config.tracking_uri:
        _set_tracking(env, config)
        if _deploys_to_kserve(step, config, default_target):
            _set_s3(env, config)
    elif kind == S3:
        if config.s3_endpoint_url:
            _set_s3(env, config)
        else:
            log.debug("step %s: no S3 configured for extension %s; artifacts stay local", step.name, extension.name)
    elif kind == KSERVE_API:
        env[PREDICTOR_TARGET_INPUT] = config.predictor_target or default_target
        _set(env, names.CORE_URL, config.core_url)
    else:
        raise ExtensionError(
            f"step '{step.name}' needs extension '{extension.name}', which the runner does not know",
            hint=f"list its variables in the config under 'extensions: {{{kind}: {{NAME: value}}}}' "
            f"(known extensions: {', '.join(KNOWN)})",
        )


def _set_tracking(env: dict[str, str], config: Config) -> None:
    env[names.MLFLOW_TRACKING_URI] = config.tracking_uri or ""
    _set(env, names.MLFLOW_TRACKING_USERNAME, config.tracking_username)
    _set(env, names.MLFLOW_TRACKING_PASSWORD, config.tracking_password)


def _set_s3(env: dict[str, str], config: Config) -> None:
    _set(env, names.MLFLOW_S3_ENDPOINT_URL, config.s3_endpoint_url)
    _set(env, names.AWS_ACCESS_KEY_ID, config.aws_access_key_id)
    _set(env, names.AWS_SECRET_ACCESS_KEY, config.aws_secret_access_key)
    _set(env, names.AWS_DEFAULT_REGION, config.aws_region)


def _deploys_to_kserve(step: Step, config: Config, default_target: str) -> bool:
    target = config.predictor_target or default_target
    return target == "kserve" and any(e.kind == KSERVE_API for e in step.extensions)


def _set(env: dict[str, str], name: str, value: str | None) -> None:
    if value:
        env[name] = value
