"""The predictor step, start to end: inputs, model, choice, target, registration.

``deploy(environ)`` is the step function ``common.entrypoint`` runs: it returns
the prediction URL, which becomes the step's result. Deploying an app this
machine already runs (local or docker) replaces it, whichever target ran it;
``fuseml-steps apps`` lists and stops what is left running.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from common.storage import open_store
from steps.predictor import fuseml_core
from steps.predictor.apps import stop_app
from steps.predictor.model_info import inspect_model
from steps.predictor.runtime_choice import choose
from steps.predictor.settings import read_settings
from steps.predictor.state import StateStore
from steps.predictor.targets import DeployPlan, RecordedTarget, get_target

log = logging.getLogger(__name__)


def deploy(environ: Mapping[str, str]) -> str:
    settings = read_settings(environ)
    log.info(
        "=== predictor: %s -> app %s on target %s%s ===",
        settings.model, settings.app_name, settings.target, " (dry run)" if settings.dry_run else "",
    )  # fmt: skip
    target = get_target(settings.target)
    info = inspect_model(settings.model, open_store(settings.model, environ))
    choice = choose(info, settings.predictor, own_runtime_only=target.own_runtime_only)
    plan = DeployPlan(settings=settings, info=info, choice=choice, environ=environ)
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
