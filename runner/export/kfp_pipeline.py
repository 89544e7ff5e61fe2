"""A FuseML workflow as the plan of a Kubeflow Pipelines v2 pipeline: plain data, no ``kfp`` import.

The ``kfp`` SDK cannot live beside the steps (every release requires
``kubernetes<31``; the predictor pins 37), so the export is two halves: this
module turns the workflow into a JSON plan in the project's interpreter, and
``kfp_compile`` (run by an interpreter that has ``kfp``, see ``kfp_sdk``) builds
the pipeline from it with the SDK and compiles it. The plan is what Tekton's
export makes, in KFP's terms:

- each codeset input is a folder of the pipeline's workspace (the SDK's
  ``PipelineConfig.workspace``, a volume claim on a cluster), cloned by the
  ``fuseml-codeset`` component (in the workflow's builder image, which has git)
  from ``<input>_url`` at ``<input>_revision``; every step runs in it;
- each step is a container component (``kfp_components``): our steps' from the
  catalog, any other image with its inputs as env the same way; inputs become
  ``FUSEML_<NAME>`` through the component's arguments, the result file is the
  component's output parameter;
- ``{{ inputs.X }}`` is the pipeline parameter ``X`` (``-`` spelt ``_``),
  ``{{ steps.S.outputs.O }}`` task S's output O (also as the trainer's image,
  ``set_container_image``), workflow outputs the pipeline's outputs;
- each extension's variables come from its Secret (``fuseml-<extension>``, or
  ``--secret``) key by key (``kfp-kubernetes``' ``use_secret_as_env``), and
  ``{{ extensions.E.cfg.VAR }}`` is key ``VAR`` of E's Secret: no credential
  value is written into the pipeline.

A plan value is a list of parts joined at run time: a text, ``{"param": P}``,
``{"output": [TASK, OUTPUT]}`` or ``{"workspace": true}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common import names
from common.errors import InputError
from runner.executors.base import image_role
from runner.export.kfp_components import (
    CODESET_INPUT,
    STEPS,
    WORKSPACE_INPUT,
    codeset_component,
    container_component,
    kfp_name,
    step_component,
)
from runner.export.tekton import (
    CLUSTER_EXTENSIONS,
    DEFAULT_REVISION,
    clone_task_name,
    codeset_identity,
    codeset_input,
    image_from_our_builder,
    secret_name,
)
from runner.templates import Reference, RefKind, references, whole_reference
from runner.workflow import CODESET, Step, Workflow

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_SIZE = "1Gi"
# Keys each known extension's Secret must have, and the ones it may have.
EXTENSION_KEYS = {
    "mlflow-tracking": (
        [names.MLFLOW_TRACKING_URI],
        [names.MLFLOW_TRACKING_USERNAME, names.MLFLOW_TRACKING_PASSWORD, "MLFLOW_TRACKING_TOKEN"],
    ),
    "s3": (
        [names.MLFLOW_S3_ENDPOINT_URL, names.AWS_ACCESS_KEY_ID, names.AWS_SECRET_ACCESS_KEY],
        [names.AWS_DEFAULT_REGION, "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "MLFLOW_S3_IGNORE_TLS"],
    ),
}
Part = str | dict[str, Any]


@dataclass(frozen=True)
class KfpOptions:
    """What the workflow does not say and KFP needs."""

    codeset_urls: Mapping[str, str]  # codeset input -> git URL
    revision: str = DEFAULT_REVISION
    inputs: Mapping[str, str] = field(default_factory=dict)  # workflow input -> default of its parameter
    secrets: Mapping[str, str] = field(default_factory=dict)  # extension name -> Secret name
    images: Mapping[str, str] = field(default_factory=dict)  # step -> image, instead of the workflow's
    workspace_size: str = DEFAULT_WORKSPACE_SIZE


def pipeline_plan(flow: Workflow, options: KfpOptions) -> dict[str, Any]:
    """The plan ``kfp_compile`` builds the pipeline from (JSON-ready)."""
    _check_options(flow, options)
    return _Planner(flow, options).plan()


def param_names(flow: Workflow) -> dict[str, str]:
    """Workflow input (codeset inputs: ``<input>-url`` etc.) -> its pipeline parameter."""
    found: dict[str, str] = {}
    for item in flow.inputs:
        if item.type == CODESET:
            for suffix in ("url", "revision", "name", "project"):
                found[f"{item.name}-{suffix}"] = kfp_name(f"{item.name}_{suffix}")
        else:
            found[item.name] = kfp_name(item.name)
    clashes = sorted({p for p in found.values() if list(found.values()).count(p) > 1})
    if clashes:
        raise InputError(
            f"{flow.source}: inputs {', '.join(clashes)} are one KFP parameter once '-' is spelt '_'",
            "rename one of them",
        )
    return found


def _check_options(flow: Workflow, options: KfpOptions) -> None:
    codesets = [i.name for i in flow.codeset_inputs]
    missing = [c for c in codesets if c not in options.codeset_urls]
    unknown = [c for c in options.codeset_urls if c not in codesets]
    if missing or unknown:
        raise InputError(
            f"{flow.source}: git URLs given for {', '.join(unknown) or 'no unknown input'}, "
            f"missing for {', '.join(missing) or 'none'}",
            f"give --codeset-url URL (or INPUT=URL) for each codeset input: {', '.join(codesets) or '(none)'}",
        )
    extensions = {e.name for s in flow.steps for e in s.extensions}
    stray = sorted(set(options.secrets) - extensions)
    if stray:
        raise InputError(
            f"--secret names extension {', '.join(stray)}, which no step of {flow.name} uses",
            f"use one of: {', '.join(sorted(extensions)) or '(none)'}",
        )
    value_inputs = {i.name for i in flow.inputs if i.type != CODESET}
    if set(options.inputs) - value_inputs:
        raise InputError(
            f"--input {', '.join(sorted(set(options.inputs) - value_inputs))}: not a value input of {flow.name}",
            f"use one of: {', '.join(sorted(value_inputs)) or '(none)'}",
        )
    steps = {s.name for s in flow.steps}
    if set(options.images) - steps:
        raise InputError(
            f"--image {', '.join(sorted(set(options.images) - steps))}: not a step of {flow.name}",
            f"use one of: {', '.join(s.name for s in flow.steps)}",
        )


class _Planner:
    def __init__(self, flow: Workflow, options: KfpOptions) -> None:
        self.flow = flow
        self.options = options
        self.params = param_names(flow)

    def plan(self) -> dict[str, Any]:
        flow = self.flow
        components: dict[str, Any] = {}
        tasks: list[dict[str, Any]] = []
        for item in flow.codeset_inputs:
            name = clone_task_name(item.name)
            components[name] = codeset_component()
            git_image = self._git_image()
            if git_image:
                components[name]["implementation"]["container"]["image"] = git_image
            tasks.append(self._clone_task(name, item.name))
        previous: str | None = None
        for step in flow.steps:
            component, task = self._step_task(step, previous)
            components[step.name] = component
            tasks.append(task)
            previous = step.name
        producer = {o: s.name for s in flow.steps for o in s.outputs}
        return {
            "name": flow.name,
            "description": (flow.description or f"FuseML workflow {flow.name}").strip(),
            "workspace_size": self.options.workspace_size,
            "params": self._params(),
            "components": components,
            "tasks": tasks,
            "outputs": [
                {"name": kfp_name(o.name), "task": producer[o.name], "output": kfp_name(o.name)}
                for o in flow.outputs
                if o.name in producer
            ],
        }

    def _git_image(self) -> str | None:
        """The workflow's own builder image (it has git) clones the codeset: one image fewer to pull."""
        for step in self.flow.steps:
            image = self.options.images.get(step.name, step.image)
            if image_role(image) == "builder" and not references(image):
                return image
        return None

    def _params(self) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = []
        for item in self.flow.inputs:
            if item.type == CODESET:
                project, name = codeset_identity(self.options.codeset_urls[item.name])
                defaults = {
                    "url": self.options.codeset_urls[item.name],
                    "revision": self.options.revision,
                    "name": name,
                    "project": project,
                }
                params += [{"name": self.params[f"{item.name}-{k}"], "default": v} for k, v in defaults.items()]
                continue
            param: dict[str, Any] = {"name": self.params[item.name]}
            default = self.options.inputs.get(item.name, item.default)
            if default is not None:
                param["default"] = default
            params.append(param)
        return params

    def _clone_task(self, name: str, codeset: str) -> dict[str, Any]:
        def param(suffix: str) -> list[Part]:
            return [{"param": self.params[f"{codeset}-{suffix}"]}]

        arguments = {
            "url": param("url"),
            "revision": param("revision"),
            WORKSPACE_INPUT: [{"workspace": True}],
            CODESET_INPUT: [codeset],
            "project": param("project"),
            "name": param("name"),
        }
        return _task(name, name, arguments)

    def _step_task(self, step: Step, previous: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        role = image_role(step.image)
        if role is None and image_from_our_builder(step, self.flow):
            role = "trainer"
        component = step_component(role) if role in STEPS else _foreign_component(step)
        if step.result_name:
            _name_output(component, kfp_name(step.result_name))
        declared = {i["name"] for i in component["inputs"]}
        arguments: dict[str, list[Part]] = {WORKSPACE_INPUT: [{"workspace": True}], CODESET_INPUT: ["."]}
        if step.codeset is not None:
            arguments[CODESET_INPUT] = [codeset_input(step.codeset.name, step)]
        secrets = self._extension_secrets(step)
        env: dict[str, str] = {names.WORKFLOW_NAME: self.flow.name}
        for item in step.value_inputs:
            variable = names.input_variable(item.name)
            key = kfp_name(item.name)
            if self._from_secret(step, variable, item.value or "", secrets):
                continue
            if key not in declared:
                _add_input(component, key, variable, f"input {item.name} of the workflow's step {step.name}")
                declared.add(key)
            arguments[key] = self.parts(item.value or "")
        for var in step.env:
            if self._from_secret(step, var.name, var.value, secrets):
                continue
            if not references(var.value):
                env[var.name] = var.value
                continue
            key = kfp_name(f"env_{var.name}")
            _add_input(component, key, var.name, f"env {var.name} of the workflow's step {step.name}")
            arguments[key] = self.parts(var.value)
        task = _task(step.name, step.name, arguments)
        image = self.options.images.get(step.name)
        parts = [image] if image else self.parts(step.image)
        if all(isinstance(p, str) for p in parts):
            component["implementation"]["container"]["image"] = "".join(parts)  # type: ignore[arg-type]
        else:
            task["image"] = parts
        task["secrets"] = list(secrets.values())
        task["env"] = env
        task["namespace_env"] = names.WORKFLOW_NAMESPACE
        task["after"] = [previous] if previous else []
        if step.codeset is not None:
            task["after"].append(clone_task_name(codeset_input(step.codeset.name, step)))
        task["resources"] = _resources(step)
        if role == "builder":
            task["empty_dirs"] = {"containers": "/var/lib/containers"}
        return component, task

    def _extension_secrets(self, step: Step) -> dict[str, dict[str, Any]]:
        """Each extension's Secret and the (key, variable) pairs the step reads from it, by extension."""
        secrets: dict[str, dict[str, Any]] = {}
        for extension in step.extensions:
            if extension.kind in CLUSTER_EXTENSIONS:
                continue
            required, optional = EXTENSION_KEYS.get(extension.kind, ([], []))
            if not required:
                log.warning(
                    "step %s: extension %s (%s): KFP takes a Secret's keys one by one and fuseml-steps does not "
                    "know this one's; only its {{ extensions.%s.cfg.VAR }} templates are mapped",
                    step.name, extension.name, extension.kind, extension.name,
                )  # fmt: skip
            secrets[extension.name] = {
                "secret": secret_name(extension.name, self.options.secrets),
                "env": [{"key": k, "env": k, "optional": False} for k in required]
                + [{"key": k, "env": k, "optional": True} for k in optional],
            }
        return secrets

    def _from_secret(self, step: Step, variable: str, text: str, secrets: dict[str, dict[str, Any]]) -> bool:
        """True when ``text`` is one ``{{ extensions.E.cfg.VAR }}``: ``variable`` is then key VAR of E's Secret."""
        refs = references(text)
        if not any(r.kind is RefKind.EXTENSION_CFG for r in refs):
            return False
        whole = whole_reference(text)
        if whole is None:
            raise InputError(
                f"{self.flow.source}: step {step.name}: {variable} builds a text around an extension's "
                f"configuration, which KFP cannot compose from a Secret",
                "use the whole value ({{ extensions.E.cfg.VAR }} alone), or export --to tekton",
            )
        entry = secrets.setdefault(whole.name, {"secret": secret_name(whole.name, self.options.secrets), "env": []})
        entry["env"].append({"key": whole.output, "env": variable, "optional": False})
        return True

    def parts(self, text: str) -> list[Part]:
        """``text`` with its templates as plan parts."""
        parts: list[Part] = []
        rest = text
        for ref in references(text):
            before, _, rest = rest.partition(ref.text)
            if before:
                parts.append(before)
            parts.append(self._part(ref))
        if rest or not parts:
            parts.append(rest)
        return parts

    def _part(self, ref: Reference) -> Part:
        if ref.kind is RefKind.STEP_OUTPUT:
            return {"output": [ref.name, kfp_name(ref.output or "")]}
        item = self.flow.input(ref.name)
        if item is not None and item.type == CODESET:
            suffix = {RefKind.INPUT: "url", RefKind.CODESET_NAME: "name", RefKind.CODESET_PROJECT: "project"}
            return {"param": self.params[f"{ref.name}-{suffix[ref.kind]}"]}
        return {"param": self.params[ref.name]}


def _task(name: str, component: str, arguments: dict[str, list[Part]]) -> dict[str, Any]:
    return {
        "name": name,
        "component": component,
        "arguments": arguments,
        "secrets": [],
        "env": {},
        "after": [],
        "resources": {},
    }


def _foreign_component(step: Step) -> dict[str, Any]:
    """A step image we do not provide: its inputs as env (added as they come), its ``run`` command.

    KFP cannot set a variable from an input without a command, so the image's ``run`` is
    assumed, as our steps and FuseML's own step images have it.
    """
    return container_component(
        step.name, step.image, f"The workflow's step {step.name} ({step.image}).", [],
        step.result_name, f"output {step.result_name} of the workflow's step {step.name}",
    )  # fmt: skip


def _name_output(component: dict[str, Any], name: str) -> None:
    """The step's result under the workflow's name for it (``kserve-prediction-url`` for our predictor)."""
    (output,) = component["outputs"]
    output["name"] = name
    component["implementation"]["container"]["args"][0] = {"outputPath": name}


def _add_input(component: dict[str, Any], key: str, variable: str, meaning: str) -> None:
    component["inputs"].append({"name": key, "type": "String", "optional": True, "description": meaning})
    component["implementation"]["container"]["args"].append(
        {"if": {"cond": {"isPresent": key}, "then": [{"concat": [f"{variable}=", {"inputValue": key}]}]}}
    )


def _resources(step: Step) -> dict[str, str]:
    """Requests and limits of cpu and memory, as ``set_cpu_limit`` and friends take them."""
    found: dict[str, str] = {}
    for kind in ("requests", "limits"):
        for resource, value in (step.resources.get(kind) or {}).items():
            if str(resource) in ("cpu", "memory"):
                found[f"{resource}_{kind.removesuffix('s')}"] = str(value)
            else:
                log.warning("step %s: resource %s is not exported to KFP (cpu and memory are)", step.name, resource)
    return found
