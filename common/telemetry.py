"""No phoning home: the steps and the runtime run in pipelines, often air-gapped.

MLflow 3 sends usage telemetry to its own host unless told not to. Each step
and the serving runtime turn it off at start, for themselves and for every
child they start (the entry point inherits the variables). A user who wants it
sets ``MLFLOW_DISABLE_TELEMETRY=false`` (and ``DO_NOT_TRACK=false``): a value
already set is kept.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from common.names import DO_NOT_TRACK, MLFLOW_DISABLE_TELEMETRY

OFF = {MLFLOW_DISABLE_TELEMETRY: "true", DO_NOT_TRACK: "true"}


def disable_telemetry(*environs: MutableMapping[str, str]) -> None:
    """Switch library telemetry off in each of ``environs`` (e.g. ``os.environ``), unless already set."""
    for environ in environs:
        for name, value in OFF.items():
            environ.setdefault(name, value)
