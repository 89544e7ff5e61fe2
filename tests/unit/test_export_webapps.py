"""The Winery web app's Kubernetes manifests in deploy/webapps/winery, checked as the API server would.

The Deployment and Service go through kubernetes-validate's strict schemas. A
Knative Service has no structural schema to check against (Knative's CRD
leaves its template open and validates in its webhook), so its pod template is
checked as the Kubernetes PodSpec it is, plus the webhook rules Knative adds
(one container, at most one port, probes on that port).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from tests.fixtures.k8s_schemas import validate_documents

ROOT = Path(__file__).resolve().parents[2]
WINERY = ROOT / "deploy" / "webapps" / "winery"
URL_ENV = "WINERY_PREDICTION_URL"  # examples/webapps/winery/app.py


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((WINERY / name).read_text()))


def winery_image() -> str:
    manifest = yaml.safe_load((ROOT / "images.yaml").read_text())
    return f"{manifest['registry']}/winery:{manifest['version']}"


def knative_problems(service: dict[str, Any]) -> list[str]:
    """The Knative Service's pod template against Kubernetes' PodSpec and ObjectMeta, and Knative's rules."""
    import importlib.resources

    folder = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / "v1.37.0-local-strict"
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))

    def check(value: Any, definition: str, where: str) -> list[str]:
        schema = {"$ref": f"{definitions['$id']}#/$defs/{definition}"}
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        return [f"{where}.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)]

    problems = []
    if (service.get("apiVersion"), service.get("kind")) != ("serving.knative.dev/v1", "Service"):
        problems.append("not a serving.knative.dev/v1 Service")
    if set(service) - {"apiVersion", "kind", "metadata", "spec"}:
        problems.append(f"unknown top-level fields {sorted(set(service) - {'apiVersion', 'kind', 'metadata', 'spec'})}")
    problems += check(service["metadata"], "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "metadata")
    template = service["spec"]["template"]
    problems += check(template.get("metadata", {}), "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "template")
    problems += check(template["spec"], "io.k8s.api.core.v1.PodSpec", "template.spec")
    containers = template["spec"].get("containers", [])
    if len(containers) != 1:
        problems.append("Knative serves one container (multi-container is a feature flag)")
    for c in containers:
        ports = c.get("ports", [])
        if len(ports) > 1:
            problems.append(f"container {c.get('name')}: Knative allows at most one port")
        for probe in ("readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if port is not None and ports and port != ports[0].get("containerPort"):
                problems.append(f"container {c.get('name')}: {probe} must use the serving port")
    return problems


def test_deployment_and_service_pass_kubernetes_schemas() -> None:
    docs = documents("deployment.yaml")
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37", strict=True)
    assert validate_documents(docs, ROOT / "tests" / "data" / "tekton") == []
    deployment, service = docs
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_knative_service_is_a_valid_pod_template() -> None:
    (service,) = documents("service.yaml")
    assert knative_problems(service) == []


def test_checks_refuse_a_broken_knative_service() -> None:
    (service,) = documents("service.yaml")
    bad = copy.deepcopy(service)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    bad["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 9000})
    problems = knative_problems(bad)
    assert any("imagePullPolicy" in p for p in problems) and any("at most one port" in p for p in problems)


@pytest.mark.parametrize("name", ["service.yaml", "deployment.yaml"])
def test_the_app_is_our_winery_image_reading_the_prediction_url_from_env(name: str) -> None:
    pod = next(d for d in documents(name) if d["kind"] in ("Deployment", "Service") and "template" in d["spec"])
    (container,) = pod["spec"]["template"]["spec"]["containers"]
    assert container["image"] == winery_image()
    env = {e["name"]: e for e in container["env"]}
    assert env[URL_ENV]["valueFrom"]["configMapKeyRef"] == {"name": "winery", "key": "prediction-url", "optional": True}
    assert URL_ENV in (ROOT / "examples" / "webapps" / "winery" / "app.py").read_text()
