"""The KServe target: an InferenceService, with its Kubernetes client, manifests and status reading."""

from steps.predictor.targets.kserve.target import DeployFailed, DeployTimeout, KServeTarget

__all__ = ["DeployFailed", "DeployTimeout", "KServeTarget"]
