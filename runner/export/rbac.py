"""The ServiceAccount, Role and RoleBinding the predictor's task runs under.

The predictor's ``kserve`` target creates or replaces a Secret (the S3 keys), a
ServiceAccount and the InferenceService in the workflow's namespace, then
watches the InferenceService until it is Ready; these rules allow exactly that
(see steps/predictor/targets/kserve/client.py) and nothing cluster-wide.
"""

from __future__ import annotations

from typing import Any

DEFAULT_SERVICE_ACCOUNT = "fuseml-steps-predictor"
VERBS = ["get", "list", "watch", "create", "update", "patch"]


def predictor_rbac(service_account: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """ServiceAccount + Role + RoleBinding named ``service_account`` in ``namespace``."""
    meta = {"name": service_account, "namespace": namespace, "labels": dict(labels)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(meta),
            "rules": [
                {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": VERBS},
                {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": VERBS},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": service_account},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
        },
    ]
