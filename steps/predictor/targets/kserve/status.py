"""Reading an InferenceService's status: ready, failed, or still on its way.

Pure functions over the object as the API returns it, so the wait loop's rules
(fail fast on a failed model load, ignore a stale Ready after an update) are
tested without a cluster. Field meanings: the InferenceService CRD's status
schema (tests/data/kserve/serving.kserve.io_inferenceservices.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAILED_TRANSITIONS = ("InvalidSpec", "BlockedByFailedLoad")
FAILED_STATE = "FailedToLoad"


@dataclass(frozen=True)
class IsvcStatus:
    """What one GET of the InferenceService says."""

    ready: bool | None  # the Ready condition: True, False, or None when absent/Unknown
    failure: str | None  # why the model cannot load, when KServe says so
    url: str | None
    address: str | None
    progress: str  # the conditions that are not yet True, for logs and timeout messages
    generation: int | None
    observed_generation: int | None

    @property
    def caught_up(self) -> bool:
        """True when the status was written for the current spec (only Knative mode says so)."""
        return (
            self.generation is not None
            and self.observed_generation is not None
            and self.observed_generation >= self.generation
        )


def read_status(isvc: dict[str, Any]) -> IsvcStatus:
    status = isvc.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready_condition = conditions.get("Ready") or {}
    ready = {"True": True, "False": False}.get(str(ready_condition.get("status")))
    pending = [
        f"{kind}={c.get('status')}" + (f" ({c.get('reason')}: {c.get('message')})" if c.get("message") else "")
        for kind, c in conditions.items()
        if str(c.get("status")) != "True"
    ]
    return IsvcStatus(
        ready=ready,
        failure=_failure(status.get("modelStatus") or {}),
        url=status.get("url") or None,
        address=(status.get("address") or {}).get("url") or None,
        progress="; ".join(pending) or ("no conditions yet" if not conditions else "all conditions True"),
        generation=(isvc.get("metadata") or {}).get("generation"),
        observed_generation=status.get("observedGeneration"),
    )


def _failure(model_status: dict[str, Any]) -> str | None:
    transition = model_status.get("transitionStatus")
    states = model_status.get("states") or {}
    failed_state = FAILED_STATE in (states.get("targetModelState"), states.get("activeModelState"))
    if transition not in FAILED_TRANSITIONS and not failed_state:
        return None
    info = model_status.get("lastFailureInfo") or {}
    what = transition if transition in FAILED_TRANSITIONS else FAILED_STATE
    reason = info.get("reason") or "no reason given"
    message = info.get("message") or ""
    exit_code = info.get("exitCode")
    details = f"{reason}: {message}" if message else reason
    if exit_code is not None:
        details += f" (exit code {exit_code})"
    return f"{what}, {details}"


def spec_unchanged(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when every field we set already has our value (defaults the server added do not count)."""
    optional = ("runtime", "runtimeVersion")  # fields we may leave out: their absence must match too
    old_model = ((existing.get("spec") or {}).get("predictor") or {}).get("model") or {}
    new_model = ((wanted.get("spec") or {}).get("predictor") or {}).get("model") or {}
    if any((key in old_model) != (key in new_model) for key in optional):
        return False
    return _contains(existing.get("spec") or {}, wanted.get("spec") or {}) and all(
        _contains((existing.get("metadata") or {}).get(key) or {}, (wanted.get("metadata") or {}).get(key) or {})
        for key in ("labels", "annotations")
    )


def _contains(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(_contains(actual.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(_contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return actual == wanted or str(actual) == str(wanted)
