"""``fuseml-steps apps``: the deployments this machine runs, and stopping them.

    fuseml-steps apps                 NAME, TARGET, URL, GRPC, MODEL, STARTED, ALIVE
    fuseml-steps apps stop NAME

The local analogue of ``fuseml application list`` and ``delete``: the
predictor's local and docker targets record each deployment in its state
folder, and leave it running after the step ends (it is the deployment). The
folder is the predictor's own (``FUSEML_STATE_DIR``, else its default), so
apps deployed by the runner, by ``make demo`` or by hand are all found.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from common.errors import InputError, ServiceUnavailable
from runner.formatting import format_table
from steps.predictor.apps import is_alive, stop_app
from steps.predictor.naming import checked_app_name
from steps.predictor.settings import state_dir as predictor_state_dir
from steps.predictor.state import AppState, StateStore

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="$FUSEML_STATE_DIR, else ~/.cache/fuseml-steps/predictor",
    help="The predictor's state folder, where its local and docker deployments are recorded.",
)


@click.group(invoke_without_command=True)
@state_dir_option
@click.pass_context
def apps(ctx: click.Context, state_dir: Path | None) -> None:
    """List the apps the predictor runs on this machine (like 'fuseml application list'); 'stop' ends one."""
    ctx.obj = state_dir
    if ctx.invoked_subcommand is None:
        click.echo(format_apps(_store(state_dir).apps()))


@apps.command()
@click.argument("name")
@state_dir_option
@click.pass_context
def stop(ctx: click.Context, name: str, state_dir: Path | None) -> None:
    """Stop the app NAME and forget it (like 'fuseml application delete')."""
    store = _store(state_dir or ctx.obj)
    if not stop_app(store, checked_app_name(name)):
        raise InputError(f"no app {name} is recorded in {store.folder}", "`fuseml-steps apps` lists the apps there")
    click.echo(f"{name}: stopped")


def format_apps(states: list[AppState]) -> str:
    """The listing: a header and one row per app, columns aligned."""
    rows = [("NAME", "TARGET", "URL", "GRPC", "MODEL", "STARTED", "ALIVE")]
    rows += [(s.app, s.kind, s.url, s.grpc or "-", s.model, _started(s.started_at), _alive(s)) for s in states]
    return format_table(rows)


def _store(folder: Path | None) -> StateStore:
    return StateStore(folder if folder is not None else predictor_state_dir(os.environ))


def _started(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def _alive(state: AppState) -> str:
    """yes / no, or unknown when the target cannot be asked (no Docker engine answers, a record made by hand)."""
    try:
        return "yes" if is_alive(state) else "no"
    except (ServiceUnavailable, InputError):
        return "unknown"
