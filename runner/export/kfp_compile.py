"""Builds and compiles a Kubeflow Pipelines v2 pipeline from a plan (``kfp_pipeline``), with the ``kfp`` SDK.

Run as ``python -I kfp_compile.py OUT.yaml < plan.json`` by an interpreter that
has ``kfp`` and ``kfp-kubernetes`` (not the project's: see ``kfp_sdk``), so it
imports nothing of the project, only the standard library and the SDK.
The plan's components are KFP component YAML (v1 format, as
``deploy/kfp/components`` holds them); its values are lists of parts (text,
``{"param": P}``, ``{"output": [TASK, OUTPUT]}``, ``{"workspace": true}``)
joined at run time the way an f-string of pipeline channels is.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, NamedTuple


def build_pipeline(plan: dict[str, Any]) -> Any:
    """The ``@dsl.pipeline`` the plan describes (its signature made from the plan's parameters)."""
    import yaml
    from kfp import components, dsl
    from kfp import kubernetes as k8s

    ops = {name: components.load_component_from_text(yaml.safe_dump(spec)) for name, spec in plan["components"].items()}
    param_names = [p["name"] for p in plan["params"]]

    def body(*args: Any) -> Any:
        params = dict(zip(param_names, args, strict=True))
        tasks: dict[str, Any] = {}

        def value(parts: list[Any]) -> Any:
            resolved = [resolve(part) for part in parts]
            if len(resolved) == 1:
                return resolved[0]
            return "".join(str(r) for r in resolved)  # channels in text: KFP's f-string concatenation

        def resolve(part: Any) -> Any:
            if isinstance(part, str):
                return part
            if "param" in part:
                return params[part["param"]]
            if "output" in part:
                task, output = part["output"]
                return tasks[task].outputs[output]
            return dsl.WORKSPACE_PATH_PLACEHOLDER

        for spec in plan["tasks"]:
            task = ops[spec["component"]](**{k: value(v) for k, v in spec["arguments"].items()})
            task.set_display_name(spec["name"])
            task.set_caching_options(False)  # steps deploy and register things: never skip one
            if spec.get("image"):
                task.set_container_image(value(spec["image"]))
            for name, text in spec["env"].items():
                task.set_env_variable(name, text)
            if spec.get("namespace_env"):
                k8s.use_field_path_as_env(task, env_name=spec["namespace_env"], field_path="metadata.namespace")
            for secret in spec["secrets"]:
                for optional, pairs in _key_maps(secret["env"]):
                    k8s.use_secret_as_env(
                        task, secret_name=secret["secret"], secret_key_to_env=pairs, optional=optional
                    )
            for volume, path in spec.get("empty_dirs", {}).items():
                k8s.empty_dir_mount(task, volume_name=volume, mount_path=path)
            for setting, amount in spec["resources"].items():
                getattr(task, f"set_{setting}")(amount)
            if spec["after"]:
                task.after(*[tasks[name] for name in spec["after"]])
            tasks[spec["name"]] = task
        outputs = {o["name"]: tasks[o["task"]].outputs[o["output"]] for o in plan["outputs"]}
        if not outputs:
            return None
        return Outputs(**outputs)

    Outputs = NamedTuple("Outputs", [(o["name"], str) for o in plan["outputs"]])  # type: ignore[misc]  # noqa: UP014
    parameters = [
        inspect.Parameter(
            p["name"],
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=str,
            default=p["default"] if "default" in p else inspect.Parameter.empty,
        )
        for p in plan["params"]
    ]
    parameters.sort(key=lambda p: p.default is not inspect.Parameter.empty)  # required ones first
    param_names[:] = [p.name for p in parameters]
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Outputs if plan["outputs"] else inspect.Signature.empty
    )
    body.__name__ = plan["name"].replace("-", "_")
    config = dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size=plan["workspace_size"]))
    return dsl.pipeline(name=plan["name"], description=plan["description"], pipeline_config=config)(body)


def _key_maps(entries: list[dict[str, Any]]) -> list[tuple[bool, dict[str, str]]]:
    """The (optional, {key: variable}) maps for ``use_secret_as_env``: a key read into two variables
    (``MLFLOW_S3_ENDPOINT_URL`` and a workflow's ``S3_ENDPOINT``) needs two maps."""
    maps: list[tuple[bool, dict[str, str]]] = []
    for entry in entries:
        target = next((m for o, m in maps if o is entry["optional"] and entry["key"] not in m), None)
        if target is None:
            target = {}
            maps.append((entry["optional"], target))
        target[entry["key"]] = entry["env"]
    return maps


def compile_plan(plan: dict[str, Any], package_path: str) -> None:
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(plan), package_path=package_path)


if __name__ == "__main__":
    compile_plan(json.load(sys.stdin), sys.argv[1])
