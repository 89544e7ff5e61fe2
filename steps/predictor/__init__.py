"""The predictor step: inspect an MLflow model, pick how to serve it, deploy it.

It reads the model's MLmodel (``model_info``), chooses a serving runtime and
model format (``runtime_choice``), and hands a ``DeployPlan`` to one target
(``targets``: KServe on Kubernetes, a local process, or a Docker container).
The result is the V2 prediction URL. The serving runtime for MLflow models
itself is the top-level ``serving`` package (its own image); what the local
and docker targets leave running is listed and stopped with ``fuseml-steps apps``.
"""
