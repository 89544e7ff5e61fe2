"""The one interface every deploy target implements.

A target takes a ``DeployPlan`` (what to serve and how) and either describes
what it would do (dry run) or does it and returns a ``Deployment``: the V2 URL
plus what FuseML core should know about it. Targets whose deployments run on
this machine (local, docker) record them in the state folder and are
``RecordedTarget``s: only they know how to tell whether theirs still run and
how to stop them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.model_uri import ModelLocation
from steps.predictor.model_info import ModelInfo
from steps.predictor.model_placement import provenance
from steps.predictor.runtime_choice import ServingChoice
from steps.predictor.serving_environment import ServingEnvironment
from steps.predictor.settings import Settings
from steps.predictor.state import AppState


@dataclass(frozen=True)
class DeployPlan:
    """Everything a target needs: the inputs, the model facts and the serving choice.

    ``info.url`` is where the runtime loads the model from (a cached or staged
    copy when the model was behind the MLflow server); ``location`` is what the
    given URI resolved to, and ``preparation`` the plan's lines about the copy.
    """

    settings: Settings
    info: ModelInfo
    choice: ServingChoice
    environ: Mapping[str, str]
    location: ModelLocation | None = None
    preparation: tuple[str, ...] = ()
    environment: ServingEnvironment | None = None  # local and docker: the Python or image the runtime runs in

    @property
    def provenance(self) -> dict[str, str]:
        """The URI given and what it resolved to (registered model, version, run), for labels and annotations."""
        return provenance(self.location, self.settings.model)


@dataclass(frozen=True)
class Deployment:
    """A running deployment: its prediction URL and, on Kubernetes, its objects."""

    url: str
    namespace: str | None = None
    resources: list[dict[str, str]] = field(default_factory=list)


class Target(ABC):
    """A place to deploy a model to."""

    name: str = ""
    # Targets that can run only our MLflow runtime (local process, container).
    own_runtime_only: bool = False

    @abstractmethod
    def describe(self, plan: DeployPlan) -> tuple[str, str]:
        """For a dry run: (the plan and manifests as text, the URL the deployment would have)."""

    @abstractmethod
    def deploy(self, plan: DeployPlan) -> Deployment:
        """Create or replace the deployment, wait until it answers, return it."""


class RecordedTarget(Target):
    """A target whose deployments run on this machine, recorded in the state folder under the target's ``name``.

    ``deploy`` records what it started; replacing an app recorded earlier (maybe by
    another target) is the caller's job, through ``steps.predictor.apps.stop_app``.
    """

    @abstractmethod
    def alive(self, state: AppState) -> bool:
        """Whether the deployment ``state`` records still runs."""

    @abstractmethod
    def stop(self, state: AppState) -> None:
        """End the deployment ``state`` records, if it still runs (the record itself is the caller's)."""
