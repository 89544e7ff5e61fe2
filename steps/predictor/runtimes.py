"""The serving runtimes a predictor can deploy to, and what each one supports.

The KServe entries mirror the default ClusterServingRuntimes of KServe v0.20
(``tests/data/kserve/runtimes/``; a unit test keeps this table and those files in
step). The step image does not carry those YAML files, so the facts live here.
``fuseml-mlflow`` is our own runtime (``serving``), installed on a
cluster from ``deploy/kserve/fuseml-mlflow-runtime.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    """One serving runtime: its name, model formats (with declared versions) and protocols."""

    name: str
    formats: dict[str, tuple[str, ...]]
    protocols: tuple[str, ...]
    ours: bool = False

    def supports(self, model_format: str, version: str | None, protocol: str) -> str | None:
        """None when the runtime can serve this; else the reason it cannot."""
        if model_format not in self.formats:
            return f"runtime {self.name} does not serve model format {model_format!r}"
        declared = self.formats[model_format]
        if version is not None and declared and version not in declared:
            return f"runtime {self.name} declares {model_format} versions {', '.join(declared)}, not {version!r}"
        if protocol not in self.protocols:
            return f"runtime {self.name} speaks protocol {', '.join(self.protocols)} only, not {protocol}"
        return None


FUSEML_MLFLOW = "fuseml-mlflow"

RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("kserve-sklearnserver", {"sklearn": ("1",)}, ("v1", "v2")),
        Runtime("kserve-xgbserver", {"xgboost": ("2",)}, ("v1", "v2")),
        Runtime("kserve-lgbserver", {"lightgbm": ("4",)}, ("v1", "v2")),
        Runtime(
            "kserve-mlserver",
            {"sklearn": ("0", "1"), "xgboost": ("1", "2"), "lightgbm": ("3", "4"), "mlflow": ("1", "2")},
            ("v2",),
        ),
        Runtime(
            "kserve-tritonserver",
            {"tensorrt": ("8",), "tensorflow": ("1", "2"), "onnx": ("1",), "pytorch": ("1",), "triton": ("2",)},
            ("v2", "grpc-v2"),
        ),
        Runtime("kserve-tensorflow-serving", {"tensorflow": ("1", "2")}, ("v1", "grpc-v1")),
        # Our runtime: any MLflow pyfunc model, whatever MLflow version wrote it.
        Runtime(FUSEML_MLFLOW, {"mlflow": ()}, ("v2",), ours=True),
    )
}
