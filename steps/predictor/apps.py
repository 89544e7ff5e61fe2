"""The deployments this machine runs: what the state folder records, whether each still runs, stopping one.

Each record names the target that made it (``AppState.kind``), and that target
alone knows how to check and stop it (a process group, a container). This is
what ``fuseml-steps apps`` shows and stops, and how a new deploy of an app
replaces the old one whichever target ran it: one app name, one record.
"""

from __future__ import annotations

from common.errors import InputError
from steps.predictor.state import AppState, StateStore
from steps.predictor.targets import RecordedTarget, get_target


def recorded_target(state: AppState) -> RecordedTarget:
    """The target that made ``state``'s deployment."""
    try:
        target = get_target(state.kind)
    except InputError:
        target = None
    if not isinstance(target, RecordedTarget):
        raise InputError(
            f"the record of {state.app} names target {state.kind!r}, which keeps no deployments on this machine",
            "delete its .json file from the state folder if it was written by hand",
        )
    return target


def is_alive(state: AppState) -> bool:
    """Whether the deployment ``state`` records still runs."""
    return recorded_target(state).alive(state)


def stop_app(store: StateStore, app: str) -> bool:
    """Stop the deployment recorded as ``app`` and forget it; False when none is recorded."""
    state = store.load(app)
    if state is None:
        return False
    recorded_target(state).stop(state)
    store.remove(app)
    return True
