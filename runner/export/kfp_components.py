"""Our steps as Kubeflow Pipelines container components (KFP's component YAML, ``deploy/kfp/components``).

A KFP container cannot take an environment variable from an input, and our
steps read nothing else (docs/contract.md), so every component runs the same
fixed ``sh`` script that receives each given input as one argument
``FUSEML_<NAME>=<value>`` and ``exec``s ``env ... run``: values are positional
arguments, never interpolated into the script, and an input not given (KFP's
``isPresent``) is no variable, so the step's own default applies. The step's
result file, ``$FUSEML_RESULTS_DIR/$TASK_RESULT``, is the component's output
parameter file (``{outputPath: ...}``), split into folder and name.

Inputs are FuseML's names with ``_`` (KFP's own spelling); the variable keeps
the name the step reads. ``python -m runner.export.kfp_components DIR`` writes
the catalog; a unit test checks it against this module and the steps' settings.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common import names

# The tags `make images` builds (images.yaml); the trainer's image is the builder's output.
BUILDER_IMAGE = "ghcr.io/fuseml-steps/mlflow-builder:0.1.0"
PREDICTOR_IMAGE = "ghcr.io/fuseml-steps/kserve-predictor:0.1.0"
# The trainer's image is set per task (the builder's result); this one only fills the field.
TRAINER_PLACEHOLDER_IMAGE = BUILDER_IMAGE
WORKSPACE_INPUT = "workspace"
CODESET_INPUT = "codeset"

# Runs the step: $1 the result file, $2 the workspace, $3 the codeset folder in it, then NAME=value pairs.
STEP_SCRIPT = """\
result=$1 workdir=$2/$3
shift 3
mkdir -p "${result%/*}"
cd "$workdir"
exec env FUSEML_RESULTS_DIR="${result%/*}" TASK_RESULT="${result##*/}" "$@" run
"""
# Clones the codeset into the workspace and names it as FuseML's checkout did (.fuseml/_org, _project).
CODESET_SCRIPT = """\
url=$1 revision=$2 folder=$3/$4 project=$5 name=$6
rm -rf "$folder"
git clone --quiet -- "$url" "$folder"
cd "$folder"
git -c advice.detachedHead=false checkout --quiet "$revision" --
mkdir -p .fuseml
[ -s .fuseml/_org ] || printf %s "$project" > .fuseml/_org
[ -s .fuseml/_project ] || printf %s "$name" > .fuseml/_project
"""


@dataclass(frozen=True)
class StepComponent:
    """One of our steps: its component name, image, inputs (name, meaning) and output."""

    name: str
    image: str
    description: str
    inputs: tuple[tuple[str, str], ...]
    output: str
    output_description: str


VERBOSE = ("verbose", "true for detailed logs (secrets stay masked)")
STEPS = {
    "builder": StepComponent(
        "fuseml-builder",
        BUILDER_IMAGE,
        "Build the codeset's Python environment into a trainer image, or with model that model's serving "
        "environment (content-addressed tag; nothing is built when the registry has it).",
        (
            (
                "model",
                "a model URI (s3://..., mlflow-artifacts:/..., runs:/<run_id>/<path>, models:/<name>/<version> or "
                "models:/<name>@<alias>): build its serving environment instead of the codeset's",
            ),
            ("registry", "registry the image is pushed to and looked up in (default registry.fuseml-registry)"),
            ("pull_registry", "registry host in the returned reference (default 127.0.0.1:30500; empty: registry)"),
            ("repository", "repository in both registries (default mlflow/trainer; mlflow/serving with model)"),
            ("base_image", "base of the built image (default python:3.11-slim)"),
            ("backend", "auto, docker, buildah or venv (default auto: buildah in a pod)"),
            ("cache_dir", "where the venv backend keeps environments"),
            ("pip_ca", "CA bundle pip needs behind a TLS-intercepting proxy (a path in the container)"),
            ("registry_ca", "CA bundle for registries with a private CA (a path in the container)"),
            ("insecure_registries", "registries reachable over plain http, space or comma separated"),
            ("no_cache", "true to rebuild every layer"),
            ("installer", "what installs the environment's packages: auto, uv or pip (default auto)"),
            ("miniconda_version", "FuseML's input; accepted and ignored"),
            ("intel_optimized", "FuseML's input; accepted and ignored"),
            ("compressed_caching", "FuseML's input; accepted and ignored"),
            VERBOSE,
        ),
        "image",
        "the trainer (or serving) image: <pull_registry>/<repository>:<content hash>",
    ),
    "trainer": StepComponent(
        "fuseml-trainer",
        TRAINER_PLACEHOLDER_IMAGE,
        "Run an MLproject entry point in the image the builder made (set the task's image to the builder's "
        "output), with MLflow tracking; returns the logged model's URL.",
        (
            ("mlflow_experiment", "experiment to log to (default <org>.<project>, else the codeset folder name)"),
            ("mlflow_entrypoint", "MLproject entry point (default main)"),
            ("mlflow_entrypoint_args", "name=value pairs, space or comma separated (alpha=0.4 l1_ratio=0.2)"),
            ("mlflow_artifact_path", "the name the code logs its model under (default model)"),
            ("register_model", "register the trained model under this name in the MLflow Model Registry"),
            ("model_alias", "alias to move to the new model version, e.g. champion (needs register_model)"),
            VERBOSE,
        ),
        "mlflow-model-url",
        "the folder holding the logged model's MLmodel (s3://...), or models:/<name>/<version>",
    ),
    "predictor": StepComponent(
        "fuseml-predictor",
        PREDICTOR_IMAGE,
        "Deploy a model so that it answers Open Inference Protocol V2 requests (KServe in a cluster); "
        "returns the prediction URL after a real inference answered.",
        (
            (
                "model",
                "model: s3://... (the folder holding MLmodel), mlflow-artifacts:/..., runs:/<run_id>/<path>, "
                "models:/<name>/<version> or models:/<name>@<alias> (required)",
            ),
            ("predictor", "auto, sklearn, xgboost, mlflow, mlserver, triton or tensorflow (default auto)"),
            ("app_name", "InferenceService name (default <org>-<project>-<workflow>)"),
            ("runtime_version", "serving runtime image version"),
            ("resources_limits", "YAML/JSON map merged into the predictor's limits, e.g. {nvidia.com/gpu: 1}"),
            ("target", "kserve (default in a pod), local or docker"),
            ("timeout", "seconds to wait for the model to answer (default 600)"),
            ("dry_run", "true to print the plan and manifests and change nothing"),
            ("state_dir", "where local/docker deployments keep their state"),
            (
                "serving_image",
                "docker target, the image that serves the model as it is (e.g. the serving-builder's output); "
                "local target, venv://PATH (default: chosen by serving_env)",
            ),
            ("workers", "local/docker targets: server processes (a number, or auto)"),
            (
                "model_store",
                "kserve target: s3://bucket/prefix where models KServe cannot read (mlflow-artifacts:/, runs:/, "
                "models:/ behind the MLflow server) are copied (default s3://mlflow-artifacts/fuseml-models)",
            ),
            (
                "serving_env",
                "local/docker targets, the environment that serves the model: auto (the runtime's when it has every "
                "requirement the model names, else the model's own, built once and cached), model or runtime "
                "(default auto)",
            ),
            (
                "cache_dir",
                "local target, where the model's own serving venvs are kept (default ~/.cache/fuseml/venvs)",
            ),
            ("base_image", "docker target, base of the model's own serving image (default python:3.11-slim)"),
            (
                "pip_ca",
                "CA bundle pip needs behind a TLS-intercepting proxy, to build a model's own environment "
                "(default $PIP_CERT)",
            ),
            ("installer", "auto (uv, pip as the fallback), uv or pip: what installs a model's own environment"),
            VERBOSE,
        ),
        "prediction-url",
        "the V2 prediction URL, .../v2/models/<app>/infer",
    ),
}


def kfp_name(name: str) -> str:
    """A FuseML name as KFP spells inputs and outputs (``mlflow-model-url`` -> ``mlflow_model_url``)."""
    return name.replace("-", "_").lower()


def step_component(role: str) -> dict[str, Any]:
    """The component of our step ``role`` (builder, trainer, predictor)."""
    step = STEPS[role]
    return container_component(
        step.name, step.image, step.description, [(n, names.input_variable(n), d) for n, d in step.inputs],
        step.output, step.output_description,
    )  # fmt: skip


def container_component(
    name: str,
    image: str,
    description: str,
    inputs: list[tuple[str, str, str]],
    output: str | None,
    output_description: str = "",
) -> dict[str, Any]:
    """A step component: ``inputs`` are (input name, variable, meaning); each is optional and given as env."""
    declared: list[dict[str, Any]] = [
        {"name": WORKSPACE_INPUT, "type": "String", "description": "the pipeline's workspace (its path placeholder)"},
        {"name": CODESET_INPUT, "type": "String", "description": "the codeset's folder in the workspace"},
    ]
    args: list[Any] = []
    for input_name, variable, meaning in inputs:
        key = kfp_name(input_name)
        declared.append({"name": key, "type": "String", "optional": True, "description": meaning})
        args.append({"if": {"cond": {"isPresent": key}, "then": [{"concat": [f"{variable}=", {"inputValue": key}]}]}})
    outputs = []
    result: Any = "/tmp/fuseml-results/none"  # no output: the result is written nowhere KFP reads
    if output:
        outputs = [{"name": kfp_name(output), "type": "String", "description": output_description}]
        result = {"outputPath": kfp_name(output)}
    return {
        "name": name,
        "description": description,
        "inputs": declared,
        "outputs": outputs,
        "implementation": {
            "container": {
                "image": image,
                "command": ["sh", "-ec", STEP_SCRIPT, name],
                "args": [result, {"inputValue": WORKSPACE_INPUT}, {"inputValue": CODESET_INPUT}, *args],
            }
        },
    }


def codeset_component() -> dict[str, Any]:
    """Clones a codeset into the workspace: the git-clone of KFP pipelines (our builder image has git)."""
    meaning = {
        "url": "git URL of the codeset",
        "revision": "branch, tag or commit",
        WORKSPACE_INPUT: "the pipeline's workspace (its path placeholder)",
        CODESET_INPUT: "the folder in the workspace to clone into",
        "project": "the codeset's project (.fuseml/_org) unless the codeset has one",
        "name": "the codeset's name (.fuseml/_project) unless the codeset has one",
    }
    return {
        "name": "fuseml-codeset",
        "description": "Clone a codeset into the pipeline's workspace, named as FuseML's checkout named it.",
        "inputs": [{"name": n, "type": "String", "description": d} for n, d in meaning.items()],
        "implementation": {
            "container": {
                "image": BUILDER_IMAGE,
                "command": ["sh", "-ec", CODESET_SCRIPT, "fuseml-codeset"],
                "args": [{"inputValue": n} for n in meaning],
            }
        },
    }


def catalog() -> dict[str, dict[str, Any]]:
    """File name -> component, as ``deploy/kfp/components`` holds them."""
    components = {f"{role}.yaml": step_component(role) for role in STEPS}
    components["codeset.yaml"] = codeset_component()
    return components


class _Dumper(yaml.SafeDumper):
    """Scripts as block text, the way people read them."""


_Dumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)


def dump(component: dict[str, Any]) -> str:
    header = "# Generated by `python -m runner.export.kfp_components deploy/kfp/components`; edit that module.\n"
    return header + yaml.dump(component, Dumper=_Dumper, sort_keys=False, width=120)


def write_catalog(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, component in catalog().items():
        path = folder / file_name
        path.write_text(dump(component))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_catalog(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/kfp/components")):
        print(path)
