"""What a saved MLflow model is: its flavours, signature, input example and files.

The runtime is chosen from these facts (not from the flavour name alone: MLflow
3.17 saves scikit-learn models as ``model.skops`` by default, which KServe's
sklearn server cannot load), and the readiness probe builds its request from the
input example or the signature. Only MLmodel and the small example files are
read; the model itself is never downloaded here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml

from common.errors import InputError, StepError, StorageError
from common.storage import ArtifactStore, join_url

log = logging.getLogger(__name__)

MLMODEL = "MLmodel"
# Extensions KServe's sklearn server (and MLServer's sklearn runtime) load.
SKLEARN_SERVER_EXTENSIONS = (".joblib", ".pkl", ".pickle")


class ModelError(StepError):
    """The model URL does not hold a usable MLflow model."""


@dataclass(frozen=True)
class Column:
    """One input of the model's signature (a column, or a named tensor)."""

    name: str | None
    type: str  # MLflow type: double, float, long, integer, boolean, string, binary, datetime, tensor
    dtype: str | None = None  # numpy dtype of a tensor input
    shape: tuple[int, ...] | None = None  # tensor shape, -1 for any size


@dataclass(frozen=True)
class ModelInfo:
    """The facts about one saved MLflow model that deployment depends on."""

    url: str
    flavors: dict[str, dict[str, Any]]
    files: tuple[str, ...]
    inputs: tuple[Column, ...] = ()
    example_columns: tuple[str, ...] | None = None
    example_rows: tuple[tuple[Any, ...], ...] = ()
    mlflow_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def has(self, flavor: str) -> bool:
        return flavor in self.flavors

    def flavor(self, flavor: str) -> dict[str, Any]:
        return self.flavors.get(flavor) or {}

    @property
    def top_level_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if "/" not in f)

    @property
    def sklearn_server_files(self) -> tuple[str, ...]:
        """Top-level files KServe's sklearn server would try to load (it wants exactly one)."""
        return tuple(f for f in self.top_level_files if f.lower().endswith(SKLEARN_SERVER_EXTENSIONS))

    @property
    def tensor_inputs(self) -> bool:
        return bool(self.inputs) and all(c.type == "tensor" for c in self.inputs)

    def summary(self) -> str:
        parts = [", ".join(sorted(self.flavors)) or "no flavours"]
        if self.has("sklearn"):
            sk = self.flavor("sklearn")
            parts.append(f"sklearn {sk.get('sklearn_version')} as {sk.get('pickled_model')}")
        parts.append(f"{len(self.inputs)} signature inputs" if self.inputs else "no signature")
        parts.append(f"input example of {len(self.example_rows)} rows" if self.example_rows else "no input example")
        return "; ".join(parts)


def inspect_model(url: str, store: ArtifactStore) -> ModelInfo:
    """Read the MLflow model at ``url`` (the folder that holds MLmodel)."""
    url = url.rstrip("/")
    if url.endswith("/" + MLMODEL) or url == MLMODEL:
        raise InputError(f"model={url}: give the model folder, not the MLmodel file inside it")
    files = tuple(store.list(url))
    if MLMODEL not in files:
        hint = _where_mlmodel_is(files)
        raise ModelError(
            f"model={url}: no MLmodel file there ({len(files)} files found)",
            hint or "give the URL of the folder that directly contains MLmodel (the trainer step's output)",
        )
    mlmodel = parse_mlmodel(store.read(join_url(url, MLMODEL)).decode("utf-8", "replace"), url)
    flavors = mlmodel.get("flavors") or {}
    if not isinstance(flavors, dict) or not flavors:
        raise ModelError(f"{url}/MLmodel: 'flavors' is missing or empty", "log the model with an mlflow.<flavour> API")
    columns, rows = _example(mlmodel, url, files, store)
    info = ModelInfo(
        url=url,
        flavors={name: (value or {}) for name, value in flavors.items()},
        files=files,
        inputs=parse_signature_inputs(mlmodel, url),
        example_columns=columns,
        example_rows=rows,
        mlflow_version=mlmodel.get("mlflow_version"),
    )
    log.info("model %s: %s", url, info.summary())
    return info


def parse_mlmodel(text: str, url: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelError(f"{url}/MLmodel is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise ModelError(f"{url}/MLmodel is not a YAML mapping")
    return data


def parse_signature_inputs(mlmodel: dict[str, Any], url: str) -> tuple[Column, ...]:
    """The signature's inputs; MLflow stores them as a JSON string inside the YAML."""
    signature = mlmodel.get("signature") or {}
    raw = signature.get("inputs") if isinstance(signature, dict) else None
    if not raw:
        return ()
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise ModelError(f"{url}/MLmodel: signature.inputs is not valid JSON ({e})") from e
    columns = []
    for item in items or []:
        spec = item.get("tensor-spec") or {}
        shape = tuple(int(n) for n in spec["shape"]) if "shape" in spec else None
        columns.append(Column(name=item.get("name"), type=str(item.get("type")), dtype=spec.get("dtype"), shape=shape))
    return tuple(columns)


def _example(
    mlmodel: dict[str, Any], url: str, files: tuple[str, ...], store: ArtifactStore
) -> tuple[tuple[str, ...] | None, tuple[tuple[Any, ...], ...]]:
    """The saved input example as (columns, rows), for dataframe examples in split orient."""
    info = mlmodel.get("saved_input_example_info") or {}
    path = info.get("artifact_path")
    if not path or path not in files:
        return None, ()
    try:
        example = json.loads(store.read(join_url(url, path)))
    except (StorageError, json.JSONDecodeError, UnicodeDecodeError) as e:
        log.warning("model %s: input example %s is unreadable (%s); using the signature", url, path, e)
        return None, ()
    if isinstance(example, dict) and "dataframe_split" in example:
        example = example["dataframe_split"]
    if isinstance(example, dict) and isinstance(example.get("data"), list):
        columns = example.get("columns")
        rows = tuple(tuple(row) if isinstance(row, list) else (row,) for row in example["data"])
        return (tuple(str(c) for c in columns) if columns else None), rows
    log.info("model %s: input example of type %s is not a split dataframe; using the signature", url, info.get("type"))
    return None, ()


def _where_mlmodel_is(files: tuple[str, ...]) -> str | None:
    nested = [f[: -len(MLMODEL) - 1] for f in files if f.endswith("/" + MLMODEL)]
    if nested:
        return f"an MLmodel is in the subfolder {nested[0]!r}: append it to the model URL"
    return None
