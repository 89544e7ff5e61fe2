"""``fuseml-steps``: run FuseML workflows on this machine, list runs, read step logs.

    fuseml-steps run WORKFLOW --codeset DIR [--input k=v ...] [--executor process|docker]
    fuseml-steps runs
    fuseml-steps logs RUN [STEP]
    fuseml-steps validate WORKFLOW
    fuseml-steps export WORKFLOW --to tekton --codeset-url URL [-o DIR]

Progress goes to stderr (one line per step: name, status, duration; a step's
log is folded unless -v), the workflow outputs to stdout as ``name: value``
so scripts can read them. Configuration is read here, at the entrypoint, and
passed down; see runner/config.py for the config file.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from common.errors import StepError
from common.logs import configure_logging, masker
from runner.apps import apps
from runner.config import CONFIG_FILE, PREDICTOR_TARGETS, Config, load_config, start_stack
from runner.engine import run_workflow
from runner.executors import EXECUTORS, get_executor
from runner.export.command import export
from runner.formatting import format_duration, format_table
from runner.progress import ConsoleProgress
from runner.runs import CANCELLED, SUCCEEDED, RunStore
from runner.services import MLFLOW_ARTIFACT_MODES
from runner.staging import Codeset, resolve_codeset
from runner.workflow import load_workflow

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = ".fuseml"
STATE_ENV = "FUSEML_STEPS_STATE_DIR"

state_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    envvar=STATE_ENV,
    show_default=True,
    help=f"Where runs, logs and the local MLflow store live (env {STATE_ENV}).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """Run FuseML workflows locally, with the same step images FuseML/Tekton run."""


cli.add_command(apps)
cli.add_command(export)


@cli.command()
@click.argument("workflow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--codeset",
    "codesets",
    multiple=True,
    required=True,
    metavar="DIR|INPUT=DIR",
    help="The codeset folder (copied per run; never written to). INPUT=DIR for a workflow with several.",
)
@click.option("--input", "-i", "inputs", multiple=True, metavar="NAME=VALUE", help="A workflow input; repeatable.")
@click.option(
    "--executor",
    "-e",
    type=click.Choice(sorted(EXECUTORS)),
    default="process",
    show_default=True,
    help="process: local processes and venvs, no containers; docker: the step images as containers.",
)
@click.option("--codeset-name", help="The codeset's name (default: its .fuseml/_project, else the folder name).")
@click.option("--codeset-project", help="The codeset's project/org (default: its .fuseml/_org, else 'local').")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Service config file (default: STATE_DIR/{CONFIG_FILE} if present).",
)
@click.option(
    "--stack",
    is_flag=True,
    help="Start SeaweedFS S3 and an MLflow server (and a registry for docker) on loopback for this run.",
)
@click.option(
    "--mlflow-artifacts",
    type=click.Choice(MLFLOW_ARTIFACT_MODES),
    help="How the MLflow server keeps artifacts. proxied (the --stack default, MLflow's own): through the server, "
    "steps get no S3 keys (only a predictor deploying to KServe, to stage the model); direct: steps write to S3.",
)
@click.option("--tracking-uri", help="MLflow tracking URI (default: a sqlite store in the state folder).")
@click.option("--s3-endpoint", help="S3 endpoint for MLflow artifacts (default: none, artifacts stay local).")
@click.option("--aws-access-key-id", help="S3 access key.")
@click.option("--aws-secret-access-key", help="S3 secret key (prefer the config file with ${VAR}).")
@click.option(
    "--predictor-target",
    type=click.Choice(PREDICTOR_TARGETS),
    help="Where the predictor deploys (default: local for process, docker for docker).",
)
@click.option("--registry", help="Registry the builder pushes to (docker executor), e.g. 127.0.0.1:5000.")
@click.option("--keep-codeset", is_flag=True, help="Keep the run's codeset copy even when the run succeeds.")
@click.option("--verbose", "-v", count=True, help="-v: show step logs as they come; -vv: steps log verbosely too.")
@state_option
def run(
    workflow: Path,
    codesets: tuple[str, ...],
    inputs: tuple[str, ...],
    executor: str,
    codeset_name: str | None,
    codeset_project: str | None,
    config_path: Path | None,
    stack: bool,
    mlflow_artifacts: str | None,
    tracking_uri: str | None,
    s3_endpoint: str | None,
    aws_access_key_id: str | None,
    aws_secret_access_key: str | None,
    predictor_target: str | None,
    registry: str | None,
    keep_codeset: bool,
    verbose: int,
    state_dir: Path,
) -> None:
    """Run WORKFLOW (FuseML workflow YAML) on this machine."""
    configure_logging(verbose >= 2, os.environ)
    flow = load_workflow(workflow)
    values = _pairs(inputs, "--input")
    chosen = _codesets(codesets, codeset_name, codeset_project)
    config = load_config(config_path or state_dir / CONFIG_FILE, os.environ)
    with ExitStack() as services:
        if stack:
            artifacts = mlflow_artifacts or config.mlflow_artifacts or "proxied"
            click.echo(
                f"starting the local service stack (SeaweedFS, MLflow server, {artifacts} artifacts)...", err=True
            )
            config = _overlay(start_stack(state_dir, services, executor == "docker", artifacts), config)
        config = config.merged(
            mlflow_artifacts=mlflow_artifacts,
            tracking_uri=tracking_uri,
            s3_endpoint_url=s3_endpoint,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            predictor_target=predictor_target,
            registry=registry,
        )
        progress = ConsoleProgress(sys.stderr, show_logs=verbose >= 1)
        _sigterm_as_interrupt()
        record = run_workflow(
            flow,
            chosen,
            values,
            get_executor(executor),
            config,
            state_dir,
            progress,
            verbose_steps=verbose >= 2,
            keep_codeset=keep_codeset,
        )
    for name, value in record.outputs.items():
        click.echo(f"{name}: {value}")
    if record.status == CANCELLED:
        sys.exit(130)
    if record.status != SUCCEEDED:
        sys.exit(1)


@cli.command()
@click.option("--workflow", "-w", help="Only the runs of this workflow.")
@click.option("--limit", "-n", default=50, show_default=True, help="How many runs, most recent first.")
@state_option
def runs(workflow: str | None, limit: int, state_dir: Path) -> None:
    """List runs: NAME, WORKFLOW, STARTED, DURATION, STATUS (like 'fuseml workflow list-runs')."""
    records = RunStore(state_dir).list(workflow, limit)
    rows = [("NAME", "WORKFLOW", "STARTED", "DURATION", "STATUS")]
    for r in records:
        started = datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((r.name, r.workflow, started, format_duration(r.duration), r.status))
    click.echo(format_table(rows))


@cli.command()
@click.argument("run_name", metavar="RUN")
@click.argument("step", required=False)
@state_option
def logs(run_name: str, step: str | None, state_dir: Path) -> None:
    """Show the logs of RUN ('last' for the latest), all steps or only STEP."""
    record = RunStore(state_dir).get(run_name)
    steps = [record.step(step)] if step else record.steps
    for item in steps:
        if not step:
            click.echo(f"=== {item.name} ({item.status}) ===")
        try:
            text = item.log_path.read_text(errors="replace")
        except FileNotFoundError:
            text = "(no log: the step did not start)\n" if item.started is None else "(log file is gone)\n"
        click.echo(masker().mask(text), nl=not text.endswith("\n"))


@cli.command()
@click.argument("workflow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(workflow: Path) -> None:
    """Check WORKFLOW without running it."""
    configure_logging(False, os.environ)
    flow = load_workflow(workflow)
    click.echo(f"{workflow}: workflow {flow.name} is valid ({len(flow.steps)} steps)")


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"'{item}' is not NAME=VALUE", param_hint=option)
        pairs[name.strip()] = value
    return pairs


def _codesets(items: tuple[str, ...], name: str | None, project: str | None) -> Codeset | dict[str, Codeset]:
    if len(items) == 1 and "=" not in items[0]:
        return resolve_codeset(items[0], name, project)
    if name:
        raise click.BadParameter("with several codesets, put the names in each codeset's .fuseml/_project")
    return {key: resolve_codeset(path, None, project) for key, path in _pairs(items, "--codeset").items()}


def _overlay(stack: Config, file: Config) -> Config:
    """The stack's services, with whatever the config file sets on top (kserve-api target, extensions...)."""
    defaults = Config()
    changes: dict[str, Any] = {k: v for k, v in vars(file).items() if v != getattr(defaults, k) and v is not None}
    return stack.merged(**changes)


def _sigterm_as_interrupt() -> None:
    """SIGTERM cancels the run like Ctrl-C: the running step is stopped and the run recorded."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main() -> None:
    """Console script: one line and exit 1 for errors a user can fix; tracebacks only for bugs."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except StepError as e:
        click.echo(f"fuseml-steps: error: {masker().mask(str(e))}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
