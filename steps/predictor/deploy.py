"""The predictor step, start to end: inputs, model, choice, target, registration.

``deploy(environ)`` is the step function ``common.entrypoint`` runs: it returns
the prediction URL, which becomes the step's result. The model URI is resolved
once (``runs:/`` and ``models:/`` to one exact version), and a model behind the
MLflow server is copied where the target's runtime can load it, and on the local
and docker targets the model's requirements choose the environment the runtime
runs in (``serving_environment``). Deploying an app this
machine already runs (local or docker) replaces it, whichever target ran it;
``fuseml-steps apps`` lists and stops what is left running.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import replace

from common.model_uri import resolve
from common.storage import open_store
from steps.predictor import fuseml_core, serving_environment
from steps.predictor.apps import stop_app
from steps.predictor.model_info import inspect_model
from steps.predictor.model_placement import place
from steps.predictor.runtime_choice import choose
from steps.predictor.serving_environment import model_environment_files
from steps.predictor.settings import read_settings
from steps.predictor.state import StateStore
from steps.predictor.targets import DeployPlan, RecordedTarget, Target, get_target

log = logging.getLogger(__name__)


def deploy(environ: Mapping[str, str]) -> str:
    settings = read_settings(environ)
    log.info(
        "=== predictor: %s -> app %s on target %s%s ===",
        settings.model, settings.app_name, settings.target, " (dry run)" if settings.dry_run else "",
    )  # fmt: skip
    target = get_target(settings.target)
    location = resolve(settings.model, environ)
    if location.artifact_uri != location.uri:
        log.info("model %s", location.describe())
    store = open_store(location.artifact_uri, environ)
    info = inspect_model(location.artifact_uri, store)
    choice = choose(info, settings.predictor, own_runtime_only=target.own_runtime_only)
    placement = place(location, store, info.mlmodel_bytes, settings, isinstance(target, RecordedTarget), environ)
    plan = DeployPlan(settings=settings, info=replace(info, url=placement.url), choice=choice, environ=environ,
                      location=location, preparation=placement.steps)  # fmt: skip
    if not isinstance(target, RecordedTarget):
        return _run(target, plan)
    with model_environment_files(store, info.url, info.files) as model_dir:
        environment = serving_environment.decide(settings, target.name, model_dir)
        if not settings.dry_run:
            environment = serving_environment.provide(environment, settings, target.name, environ)
        return _run(target, replace(plan, environment=environment))


def _run(target: Target, plan: DeployPlan) -> str:
    """Describe the plan (dry run) or carry it out; registers the deployment with FuseML core when configured."""
    settings = plan.settings
    if settings.dry_run:
        text, url = target.describe(plan)
        print(text, file=sys.stdout, flush=True)
        log.info("dry run: nothing changed; the URL would be like %s", url)
        return url
    if isinstance(target, RecordedTarget):
        stop_app(StateStore(settings.state_dir), settings.app_name)
    deployment = target.deploy(plan)
    if settings.core_url:
        body = fuseml_core.application(settings.app_name, settings.workflow, deployment, settings.model)
        fuseml_core.register(settings.core_url, body)
    return deployment.url
