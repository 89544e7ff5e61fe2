"""A FuseML workflow as a ``tekton.dev/v1`` Pipeline and PipelineRun, for today's Tekton.

FuseML core generated Tekton objects too, but with PipelineResources and
ClusterTasks (both gone from Tekton) and S3 keys inlined as env values. Here:

- each codeset input is a workspace, filled by the catalog's ``git-clone`` Task
  (fetched with the git resolver) from ``<input>-url`` at ``<input>-revision``,
  and mounted in every step at the path the workflow names (``/project``);
- each step is a task with an embedded ``taskSpec`` (as FuseML core made them):
  its value inputs are task params that reach the container only through
  ``env`` (``FUSEML_<NAME>``), never a script; its outputs are task results;
- ``{{ inputs.X }}`` becomes ``$(params.X)``, ``{{ steps.S.outputs.O }}``
  ``$(tasks.S.results.O)`` (also in ``image:``, through a param, since a
  taskSpec cannot see other tasks), workflow outputs become pipeline results;
- each extension is ``envFrom`` a Secret (``--secret NAME=SECRET``, default
  ``fuseml-<extension>``): its keys are the variables the step reads
  (``MLFLOW_TRACKING_URI``, ``AWS_ACCESS_KEY_ID``, ...), so no credential value
  is ever written into a document; ``{{ extensions.E.cfg.VAR }}`` is key ``VAR``
  of that Secret (``valueFrom.secretKeyRef``);
- the predictor task runs under a ServiceAccount allowed to deploy
  InferenceServices (``rbac``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common import names
from common.errors import InputError
from runner.executors.base import image_role
from runner.export.rbac import DEFAULT_SERVICE_ACCOUNT, predictor_rbac
from runner.templates import Reference, RefKind, references, render, whole_reference
from runner.workflow import CODESET, Step, Workflow

TEKTON_API = "tekton.dev/v1"
CODESET_WORKSPACE = "source"
IMAGE_PARAM = "fuseml-step-image"
CODESET_NAME_PARAM = "fuseml-codeset-name"
CODESET_PROJECT_PARAM = "fuseml-codeset-project"
RESULTS_PATH = "/tekton/results"
# The catalog's git-clone Task, fetched by the git resolver (Tekton Hub is gone).
GIT_CLONE = {
    "resolver": "git",
    "params": [
        {"name": "url", "value": "https://github.com/tektoncd/catalog.git"},
        {"name": "revision", "value": "main"},
        {"name": "pathInRepo", "value": "task/git-clone/0.9/git-clone.yaml"},
    ],
}
GIT_CLONE_USER = 65532  # git-clone runs as this user; the workspace is made writable for it via fsGroup
DEFAULT_REVISION = "main"
DEFAULT_STORAGE = "1Gi"
# Extension kinds our steps understand; any other one still becomes envFrom its Secret.
KNOWN_EXTENSION_KEYS = {
    "mlflow-tracking": [names.MLFLOW_TRACKING_URI, names.MLFLOW_TRACKING_USERNAME, names.MLFLOW_TRACKING_PASSWORD],
    "s3": [names.MLFLOW_S3_ENDPOINT_URL, names.AWS_ACCESS_KEY_ID, names.AWS_SECRET_ACCESS_KEY],
}
# kserve-api is the cluster itself: the predictor's ServiceAccount, not a Secret.
CLUSTER_EXTENSIONS = ("kserve-api",)
# buildah in a pod (steps/builder/README.md, "buildah").
BUILDER_SECURITY = {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}, "seccompProfile": {"type": "Unconfined"}}
BUILDER_STORAGE = "/var/lib/containers"


@dataclass(frozen=True)
class TektonOptions:
    """What the workflow does not say and a cluster needs."""

    codeset_urls: Mapping[str, str]  # codeset input -> git URL
    revision: str = DEFAULT_REVISION
    inputs: Mapping[str, str] = field(default_factory=dict)  # workflow input values for the PipelineRun
    secrets: Mapping[str, str] = field(default_factory=dict)  # extension name -> Secret name
    namespace: str = names.DEFAULT_WORKFLOW_NAMESPACE
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    storage: str = DEFAULT_STORAGE


def secret_name(extension: str, secrets: Mapping[str, str]) -> str:
    """The Secret an extension's variables come from: ``--secret`` or ``fuseml-<extension>``."""
    return secrets.get(extension) or f"fuseml-{extension}"


def export_tekton(flow: Workflow, options: TektonOptions) -> list[dict[str, Any]]:
    """The Pipeline, its PipelineRun and (when a step deploys models) the predictor's RBAC."""
    _check_options(flow, options)
    labels = {"fuseml.io/workflow": flow.name, "app.kubernetes.io/managed-by": "fuseml-steps"}
    pipeline = _Pipeline(flow, options).document(labels)
    run = _pipeline_run(flow, options, labels)
    documents = [pipeline, run]
    if any(image_role(s.image) == "predictor" for s in flow.steps):
        documents += predictor_rbac(options.service_account, options.namespace, labels)
    return documents


def _check_options(flow: Workflow, options: TektonOptions) -> None:
    codesets = [i.name for i in flow.codeset_inputs]
    unknown = [c for c in options.codeset_urls if c not in codesets]
    if unknown:
        raise InputError(
            f"--codeset-url names {', '.join(unknown)}, which is not a codeset input of {flow.name}",
            f"use one of: {', '.join(codesets) or '(none)'}",
        )
    missing = [c for c in codesets if c not in options.codeset_urls]
    if missing:
        raise InputError(
            f"{flow.source}: no git URL for codeset input {', '.join(missing)}",
            "give --codeset-url URL (or INPUT=URL for a workflow with several codesets)",
        )
    extensions = {e.name for s in flow.steps for e in s.extensions}
    stray = sorted(set(options.secrets) - extensions)
    if stray:
        raise InputError(
            f"--secret names extension {', '.join(stray)}, which no step of {flow.name} uses",
            f"use one of: {', '.join(sorted(extensions)) or '(none)'}",
        )
    unknown_inputs = sorted(set(options.inputs) - {i.name for i in flow.inputs if i.type != CODESET})
    if unknown_inputs:
        raise InputError(
            f"--input {', '.join(unknown_inputs)}: not a value input of {flow.name}",
            f"use one of: {', '.join(i.name for i in flow.inputs if i.type != CODESET) or '(none)'}",
        )


class _Pipeline:
    """Builds the Pipeline: one clone task per codeset, one task per step, in the workflow's order."""

    def __init__(self, flow: Workflow, options: TektonOptions) -> None:
        self.flow = flow
        self.options = options

    def document(self, labels: dict[str, str]) -> dict[str, Any]:
        flow = self.flow
        params: list[dict[str, Any]] = []
        for item in flow.inputs:
            if item.type == CODESET:
                params.append({"name": f"{item.name}-url", "type": "string", "description": f"git URL of {item.name}"})
                params.append(
                    {
                        "name": f"{item.name}-revision",
                        "type": "string",
                        "description": f"branch, tag or commit of {item.name}",
                        "default": self.options.revision,
                    }
                )
                project, name = codeset_identity(self.options.codeset_urls[item.name])
                params.append(
                    {
                        "name": f"{item.name}-name",
                        "type": "string",
                        "description": f"the codeset's name (.fuseml/_project, unless {item.name} has one)",
                        "default": name,
                    }
                )
                params.append(
                    {
                        "name": f"{item.name}-project",
                        "type": "string",
                        "description": f"the codeset's project (.fuseml/_org, unless {item.name} has one)",
                        "default": project,
                    }
                )
            else:
                param: dict[str, Any] = {"name": item.name, "type": "string"}
                if item.description:
                    param["description"] = item.description.strip()
                if item.default is not None:
                    param["default"] = item.default
                params.append(param)
        tasks = [self._clone_task(i.name) for i in flow.codeset_inputs]
        previous: str | None = None
        for step in flow.steps:
            tasks.append(self._step_task(step, previous))
            previous = step.name
        spec: dict[str, Any] = {
            "description": (flow.description or f"FuseML workflow {flow.name}").strip(),
            "params": params,
            "workspaces": [
                {"name": i.name, "description": f"the codeset {i.name}, cloned from git"} for i in flow.codeset_inputs
            ],
            "tasks": tasks,
        }
        results = self._results()
        if results:
            spec["results"] = results
        meta = {"name": flow.name, "namespace": self.options.namespace, "labels": dict(labels)}
        return {"apiVersion": TEKTON_API, "kind": "Pipeline", "metadata": meta, "spec": spec}

    def _clone_task(self, codeset: str) -> dict[str, Any]:
        return {
            "name": clone_task_name(codeset),
            "taskRef": GIT_CLONE,
            "params": [
                {"name": "url", "value": f"$(params.{codeset}-url)"},
                {"name": "revision", "value": f"$(params.{codeset}-revision)"},
                {"name": "deleteExisting", "value": "true"},
            ],
            "workspaces": [{"name": "output", "workspace": codeset}],
        }

    def _step_task(self, step: Step, previous: str | None) -> dict[str, Any]:
        role = image_role(step.image)
        params: list[dict[str, Any]] = []
        task_params: list[dict[str, Any]] = []
        env: list[dict[str, Any]] = []

        def through_param(name: str, text: str) -> str:
            """``text`` as the step sees it: a value with references goes through a task param."""
            value = self.render(text)
            if "$(" not in value:
                return value
            params.append({"name": name, "type": "string"})
            task_params.append({"name": name, "value": value})
            return f"$(params.{name})"

        def entries(name: str, param: str, text: str) -> list[dict[str, Any]]:
            """The env entries that give ``name`` its value; an extension's configuration comes from its Secret."""
            if not any(r.kind is RefKind.EXTENSION_CFG for r in references(text)):
                return [{"name": name, "value": through_param(param, text)}]
            return self._extension_entries(step, name, text)

        for item in step.value_inputs:
            env += entries(names.input_variable(item.name), item.name, item.value or "")
        image = through_param(IMAGE_PARAM, step.image)
        if step.result_name:
            env.append({"name": names.TASK_RESULT, "value": step.result_name})
            env.append({"name": names.RESULTS_DIR, "value": RESULTS_PATH})
        env.append({"name": names.WORKFLOW_NAME, "value": self.flow.name})
        env.append({"name": names.WORKFLOW_NAMESPACE, "value": "$(context.taskRun.namespace)"})
        for var in step.env:
            env += entries(var.name, f"env-{var.name.lower().replace('_', '-')}", var.value)

        container: dict[str, Any] = {"name": "run", "image": image, "env": env}
        if role is not None or image_from_our_builder(step, self.flow):
            container["command"] = ["run"]  # docs/contract.md: every step image has `run`
        secrets = [
            {"secretRef": {"name": secret_name(e.name, self.options.secrets)}}
            for e in step.extensions
            if e.kind not in CLUSTER_EXTENSIONS
        ]
        if role == "predictor":
            secrets += self._tracking_secrets_for(step)
        if secrets:
            container["envFrom"] = secrets
        resources = {k: _plain(v) for k, v in step.resources.items() if k in ("requests", "limits") and v}
        if resources:
            container["computeResources"] = resources
        task_spec: dict[str, Any] = {"params": params, "steps": [container]} if params else {"steps": [container]}
        if step.outputs:
            task_spec["results"] = [{"name": o, "type": "string"} for o in step.outputs]
        task: dict[str, Any] = {"name": step.name, "taskSpec": task_spec}
        codeset = step.codeset
        if codeset is not None:
            source = codeset_input(codeset.name, step)
            container["workingDir"] = f"$(workspaces.{CODESET_WORKSPACE}.path)"
            task_spec["workspaces"] = [{"name": CODESET_WORKSPACE, "mountPath": codeset.path}]
            task["workspaces"] = [{"name": CODESET_WORKSPACE, "workspace": source}]
            if "command" in container:  # our images have a shell; a foreign one may not
                params += [
                    {"name": CODESET_NAME_PARAM, "type": "string"},
                    {"name": CODESET_PROJECT_PARAM, "type": "string"},
                ]
                task_params.append({"name": CODESET_NAME_PARAM, "value": f"$(params.{source}-name)"})
                task_params.append({"name": CODESET_PROJECT_PARAM, "value": f"$(params.{source}-project)"})
                task_spec["params"] = params
                task_spec["steps"].insert(0, _metadata_step(image, container["workingDir"]))
        if role == "builder":
            container["securityContext"] = copy.deepcopy(BUILDER_SECURITY)
            container["volumeMounts"] = [{"name": "containers", "mountPath": BUILDER_STORAGE}]
            task_spec["volumes"] = [{"name": "containers", "emptyDir": {}}]
        if task_params:
            task["params"] = task_params
        after = [previous] if previous else [clone_task_name(c.name) for c in self.flow.codeset_inputs]
        if after:
            task["runAfter"] = after
        return task

    def _tracking_secrets_for(self, predictor: Step) -> list[dict[str, Any]]:
        """The workflow's tracking Secret, optional, for a predictor that does not list it itself.

        A trainer's output behind the tracking server (``mlflow-artifacts:/`` with a proxying
        server, or ``models:/`` once registered) is resolved through that server; FuseML's own
        workflows give the predictor no ``mlflow-tracking`` extension. Optional: an ``s3://``
        model needs none.
        """
        own = {e.name for e in predictor.extensions}
        names_ = [
            e.name for s in self.flow.steps for e in s.extensions if e.kind == "mlflow-tracking" and e.name not in own
        ]
        return [
            {"secretRef": {"name": secret_name(name, self.options.secrets), "optional": True}}
            for name in dict.fromkeys(names_)
        ]

    def _extension_entries(self, step: Step, name: str, text: str) -> list[dict[str, Any]]:
        """``{{ extensions.E.cfg.VAR }}`` as key ``VAR`` of E's Secret: the whole value, or composed in text.

        A value that is only the template is ``valueFrom`` the Secret's key; one with text
        around it reads the key into a variable first and uses Kubernetes' ``$(VARIABLE)``
        (which the kubelet expands from earlier env entries), so no value is ever written here.
        """
        whole = whole_reference(text)
        if whole is not None:
            return [{"name": name, "valueFrom": self._secret_key(whole)}]
        refs = references(text)
        others = [str(r) for r in refs if r.kind is not RefKind.EXTENSION_CFG]
        if others:
            raise InputError(
                f"{self.flow.source}: step {step.name}: {name} mixes an extension's configuration with "
                f"{', '.join(others)}; a Secret's value cannot go through a task param",
                "give the extension's value and the other template in two variables",
            )
        helpers = {extension_variable(r): self._secret_key(r) for r in refs}
        value = render(text, lambda r: f"$({extension_variable(r)})")
        return [{"name": n, "valueFrom": key} for n, key in helpers.items()] + [{"name": name, "value": value}]

    def _secret_key(self, ref: Reference) -> dict[str, Any]:
        return {"secretKeyRef": {"name": secret_name(ref.name, self.options.secrets), "key": ref.output}}

    def render(self, text: str) -> str:
        """FuseML's ``{{ ... }}`` as Tekton's ``$(...)``."""
        return render(text, self._tekton_reference)

    def _tekton_reference(self, ref: Reference) -> str:
        if ref.kind is RefKind.STEP_OUTPUT:
            return f"$(tasks.{ref.name}.results.{ref.output})"
        item = self.flow.input(ref.name)
        if item is None or item.type != CODESET:
            return f"$(params.{ref.name})"
        if ref.kind is RefKind.INPUT:  # the codeset itself is the workspace; as a value, its git URL
            return f"$(params.{ref.name}-url)"
        return f"$(params.{ref.name}-{'name' if ref.kind is RefKind.CODESET_NAME else 'project'})"

    def _results(self) -> list[dict[str, Any]]:
        producer: dict[str, str] = {}
        for step in self.flow.steps:
            for output in step.outputs:
                producer[output] = step.name
        return [
            {
                "name": o.name,
                "type": "string",
                "description": o.description.strip() or o.name,
                "value": f"$(tasks.{producer[o.name]}.results.{o.name})",
            }
            for o in self.flow.outputs
            if o.name in producer
        ]


def _plain(value: Any) -> Any:
    """The workflow loader's line-keeping mappings as plain data a YAML dumper writes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value if isinstance(value, (bool, int, float)) or value is None else str(value)


def codeset_identity(url: str) -> tuple[str, str]:
    """(project, name) of a codeset from its git URL: FuseML kept codesets at ``<git host>/<project>/<name>``."""
    parts = [p for p in url.rstrip("/").removesuffix(".git").replace(":", "/").split("/") if p]
    name = parts[-1] if parts else "codeset"
    project = parts[-2] if len(parts) > 2 else "default"
    return project, name


def _metadata_step(image: str, workdir: str) -> dict[str, Any]:
    """Writes ``.fuseml/_org`` and ``_project`` as FuseML's checkout did, unless the codeset has them.

    The steps name things after them (the experiment ``<org>.<project>``, the app
    ``<org>-<project>-<workflow>``); without them the name would be the mount folder's.
    The values reach the script as env, never interpolated into it.
    """
    script = (
        "#!/bin/sh\nset -e\nmkdir -p .fuseml\n"
        '[ -s .fuseml/_org ] || printf %s "$CODESET_PROJECT" > .fuseml/_org\n'
        '[ -s .fuseml/_project ] || printf %s "$CODESET_NAME" > .fuseml/_project\n'
    )
    return {
        "name": "codeset-metadata",
        "image": image,
        "workingDir": workdir,
        "env": [
            {"name": "CODESET_NAME", "value": f"$(params.{CODESET_NAME_PARAM})"},
            {"name": "CODESET_PROJECT", "value": f"$(params.{CODESET_PROJECT_PARAM})"},
        ],
        "script": script,
    }


def extension_variable(ref: Reference) -> str:
    """The variable an extension's configuration value is read into: ``FUSEML_EXT_<EXTENSION>_<VARIABLE>``."""
    return f"FUSEML_EXT_{ref.name.upper().replace('-', '_')}_{ref.output}"


def clone_task_name(codeset: str) -> str:
    return f"clone-{codeset}"


def codeset_input(template: str, step: Step) -> str:
    """The workflow input a step's codeset mount names (``{{ inputs.mlflow-codeset }}``)."""
    refs = references(template)
    if len(refs) != 1 or refs[0].kind is not RefKind.INPUT:
        raise InputError(
            f"step {step.name}: codeset {template!r} is not '{{{{ inputs.<codeset> }}}}'",
            "name the workflow's codeset input",
        )
    return refs[0].name


def image_from_our_builder(step: Step, flow: Workflow) -> bool:
    """True for the trainer: its image is the output of our builder, whose images run `run`."""
    for ref in references(step.image):
        producer = flow.step(ref.name) if ref.kind is RefKind.STEP_OUTPUT else None
        if producer is not None and image_role(producer.image) == "builder":
            return True
    return False


def _pipeline_run(flow: Workflow, options: TektonOptions, labels: dict[str, str]) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for item in flow.inputs:
        if item.type == CODESET:
            params.append({"name": f"{item.name}-url", "value": options.codeset_urls[item.name]})
            params.append({"name": f"{item.name}-revision", "value": options.revision})
        elif item.name in options.inputs:
            params.append({"name": item.name, "value": options.inputs[item.name]})
        elif item.default is None:
            raise InputError(f"workflow input {item.name} has no default", f"give --input {item.name}=VALUE")
    claim = {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": options.storage}}},
    }
    spec: dict[str, Any] = {
        "pipelineRef": {"name": flow.name},
        "params": params,
        "workspaces": [{"name": i.name, "volumeClaimTemplate": claim} for i in flow.codeset_inputs],
        "taskRunTemplate": {"podTemplate": {"securityContext": {"fsGroup": GIT_CLONE_USER}}},
    }
    predictors = [s.name for s in flow.steps if image_role(s.image) == "predictor"]
    if predictors:
        spec["taskRunSpecs"] = [
            {"pipelineTaskName": name, "serviceAccountName": options.service_account} for name in predictors
        ]
    meta = {"generateName": f"{flow.name}-", "namespace": options.namespace, "labels": dict(labels)}
    return {"apiVersion": TEKTON_API, "kind": "PipelineRun", "metadata": meta, "spec": spec}
