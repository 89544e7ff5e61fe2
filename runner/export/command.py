"""``fuseml-steps export WORKFLOW --to tekton|kfp``: the workflow as documents for a cluster.

Tekton: documents go to stdout (one YAML stream, ``kubectl apply -f -``) or,
with ``-o DIR``, to ``DIR/pipeline.yaml`` (the Pipeline, and the predictor's
RBAC when the workflow deploys a model) and ``DIR/pipelinerun.yaml`` (the run,
to ``kubectl create``: it has a ``generateName``). Nothing is written when the
webhook checks (``tekton_checks``) find a problem.

KFP: the pipeline's IR YAML, compiled by the ``kfp`` SDK (``kfp_sdk``), to
stdout or ``DIR/pipeline.yaml``, for ``kfp pipeline create`` or the UI's upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from common import names
from common.errors import InputError
from runner.export.kfp_pipeline import KfpOptions, pipeline_plan
from runner.export.kfp_sdk import compile_with_sdk
from runner.export.rbac import DEFAULT_SERVICE_ACCOUNT
from runner.export.tekton import DEFAULT_REVISION, DEFAULT_STORAGE, TektonOptions, export_tekton
from runner.export.tekton_checks import check_documents
from runner.workflow import CODESET, load_workflow

TARGETS = ("tekton", "kfp")


class _NoAliases(yaml.SafeDumper):
    """kubectl reads anchors, but people read these files: every value written out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Scripts and descriptions as block text, the way people write them."""
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_NoAliases.add_representer(str, _text)


def dump_documents(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(documents, Dumper=_NoAliases, sort_keys=False, width=120, explicit_start=True)


@click.command()
@click.argument("workflow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(TARGETS), required=True, help="The pipeline engine.")
@click.option(
    "--codeset-url",
    "codeset_urls",
    multiple=True,
    required=True,
    metavar="URL|INPUT=URL",
    help="Git URL the codeset is cloned from; INPUT=URL for a workflow with several codesets.",
)
@click.option("--revision", default=DEFAULT_REVISION, show_default=True, help="Branch, tag or commit to clone.")
@click.option("--input", "-i", "inputs", multiple=True, metavar="NAME=VALUE", help="A workflow input for the run.")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="EXTENSION=SECRET",
    help="The Secret whose keys become an extension's variables (default: fuseml-<extension>).",
)
@click.option(
    "--namespace",
    "-n",
    default=names.DEFAULT_WORKFLOW_NAMESPACE,
    show_default=True,
    help="Namespace of every document; the predictor deploys there.",
)
@click.option("--service-account", default=DEFAULT_SERVICE_ACCOUNT, show_default=True, help="The predictor's.")
@click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, help="Size of the codeset's volume claim (workspace)."
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="STEP=IMAGE",
    help="kfp: run STEP in IMAGE instead of the workflow's (e.g. a trainer image built beforehand).",
)
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), help="Write files here.")
def export(
    workflow: Path,
    target: str,
    codeset_urls: tuple[str, ...],
    revision: str,
    inputs: tuple[str, ...],
    secrets: tuple[str, ...],
    namespace: str,
    service_account: str,
    storage: str,
    images: tuple[str, ...],
    output_dir: Path | None,
) -> None:
    """Write WORKFLOW as a Tekton Pipeline, its PipelineRun and the predictor's RBAC (--to tekton),
    or as a Kubeflow Pipelines v2 pipeline (--to kfp)."""
    flow = load_workflow(workflow)
    urls = _pairs(codeset_urls, "--codeset-url", default_key=_only_codeset(flow))
    if target == "kfp":
        plan = pipeline_plan(
            flow,
            KfpOptions(
                codeset_urls=urls,
                revision=revision,
                inputs=_pairs(inputs, "--input"),
                secrets=_pairs(secrets, "--secret"),
                images=_pairs(images, "--image"),
                workspace_size=storage,
            ),
        )
        _write_kfp(compile_with_sdk(plan), output_dir)
        return
    if images:
        raise click.BadParameter("only with --to kfp", param_hint="--image")
    options = TektonOptions(
        codeset_urls=urls,
        revision=revision,
        inputs=_pairs(inputs, "--input"),
        secrets=_pairs(secrets, "--secret"),
        namespace=namespace,
        service_account=service_account,
        storage=storage,
    )
    documents = export_tekton(flow, options)
    problems = check_documents(documents)
    if problems:
        raise InputError(
            f"{workflow}: the exported documents would be refused by Tekton: " + "; ".join(problems),
            "fix the workflow (or report a bug in fuseml-steps export)",
        )
    if output_dir is None:
        click.echo(dump_documents(documents), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = [d for d in documents if d["kind"] == "PipelineRun"]
    rest = [d for d in documents if d["kind"] != "PipelineRun"]
    (output_dir / "pipeline.yaml").write_text(dump_documents(rest))
    (output_dir / "pipelinerun.yaml").write_text(dump_documents(runs))
    click.echo(f"wrote {output_dir / 'pipeline.yaml'} and {output_dir / 'pipelinerun.yaml'}", err=True)


def _write_kfp(text: str, output_dir: Path | None) -> None:
    if output_dir is None:
        click.echo(text, nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "pipeline.yaml").write_text(text)
    click.echo(f"wrote {output_dir / 'pipeline.yaml'}", err=True)


def _only_codeset(flow: Any) -> str | None:
    codesets = [i.name for i in flow.inputs if i.type == CODESET]
    return codesets[0] if len(codesets) == 1 else None


def _pairs(items: tuple[str, ...], option: str, default_key: str | None = None) -> dict[str, str]:
    """``NAME=VALUE`` items; a bare value is ``default_key``'s (a URL's own ``=`` is kept)."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if default_key is not None and (not sep or "://" in name or "/" in name):
            pairs[default_key] = item
        elif not sep or not name.strip():
            raise click.BadParameter(f"'{item}' is not NAME=VALUE", param_hint=option)
        else:
            pairs[name.strip()] = value
    return pairs
