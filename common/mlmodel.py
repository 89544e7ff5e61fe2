"""The one reader of MLflow's ``MLmodel`` file: flavours, signature, input example, model file.

The predictor (choosing a runtime, building its probe request) and the serving
runtime (loading the model, checking requests) must read a model the same way,
so both use this. It parses text only, with YAML and JSON: no mlflow, kserve or
scikit-learn import, so the deploy-only predictor image can use it and the
runtime starts without importing mlflow. Fetching the files (a local folder,
S3) is the caller's business.

MLflow writes the signature as JSON strings inside the YAML (``inputs`` and
``outputs``), each a list of columns (``{"name", "type", "required"}``) or of
tensors (``{"type": "tensor", "tensor-spec": {"dtype", "shape"}}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from common.errors import StepError
from common.v2_types import MLFLOW_TO_V2, NUMPY_TO_V2

MLMODEL = "MLmodel"
TENSOR = "tensor"
# What MLflow's own sklearn loader assumes when MLmodel records no serialization_format.
DEFAULT_SKLEARN_SERIALIZATION = "pickle"


class ModelError(StepError):
    """A place does not hold a usable MLflow model: no MLmodel there, or one that cannot be read.

    Its message quotes what a parser or a loader said (YAML, JSON, pickle, MLflow),
    which often spans lines; it is kept to one line, as the step contract asks.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(one_line(message), one_line(hint) if hint else hint)


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (blank lines and indentation dropped)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Column:
    """One input or output of a signature: a column, or a tensor when ``type`` is ``"tensor"``.

    MLflow lists both kinds in one JSON list told apart by ``type``, and so does
    this one type. ``name`` is None when MLmodel gives none.
    """

    name: str | None
    type: str  # MLflow type: double, float, long, integer, boolean, string, binary, datetime, or tensor
    dtype: str | None = None  # a tensor's numpy dtype name
    shape: tuple[int, ...] | None = None  # a tensor's shape, -1 for any size
    required: bool = True

    @property
    def is_tensor(self) -> bool:
        return self.type == TENSOR

    @property
    def datatype(self) -> str:
        """The V2 datatype it travels as (BYTES for anything V2 has no number type for)."""
        if self.is_tensor:
            return NUMPY_TO_V2.get(self.dtype or "", "BYTES")
        return MLFLOW_TO_V2.get(self.type, "BYTES")


@dataclass(frozen=True)
class Signature:
    """A model's inputs and outputs; MLflow's rule: each side is all columns or all tensors."""

    inputs: tuple[Column, ...] = ()
    outputs: tuple[Column, ...] = ()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The input columns in training order; empty for a tensor signature."""
        return tuple(c for c in self.inputs if not c.is_tensor)

    def named(self) -> Signature:
        """Unnamed columns named by position ("0", "1", ...), as MLflow numbers them, so V2 requests can name them."""

        def name(columns: tuple[Column, ...]) -> tuple[Column, ...]:
            return tuple(
                c if c.name is not None or c.is_tensor else replace(c, name=str(i)) for i, c in enumerate(columns)
            )

        return Signature(inputs=name(self.inputs), outputs=name(self.outputs))


@dataclass(frozen=True)
class SklearnFlavor:
    """The ``sklearn`` flavour: which file holds the estimator, and how it was written."""

    model_file: str | None  # ``pickled_model``, relative to the model folder
    serialization_format: str  # skops (MLflow 3.17's default), cloudpickle or pickle
    sklearn_version: str | None
    trusted_types: tuple[str, ...] = ()  # ``skops_trusted_types``: types a skops file may hold
    has_code: bool = False  # the model brings its own code (``code`` paths)


@dataclass(frozen=True)
class ExampleFile:
    """Where MLflow saved the model's input example (``saved_input_example_info``)."""

    path: str  # relative to the model folder
    type: str | None  # MLflow's kind of example: dataframe, ndarray, json_object, ...


@dataclass(frozen=True)
class InputExample:
    """A saved input example in MLflow's split-dataframe layout, as columns and rows."""

    columns: tuple[str, ...] | None
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class MLmodel:
    """What one MLmodel file says; ``source`` (its URL or path) names it in errors."""

    source: str
    flavors: dict[str, dict[str, Any]]
    document: dict[str, Any]

    def has(self, flavor: str) -> bool:
        return flavor in self.flavors

    def flavor(self, flavor: str) -> dict[str, Any]:
        return self.flavors.get(flavor) or {}

    def signature(self) -> Signature | None:
        """The signature, or None when the model has none; ModelError when it cannot be read.

        A method, not a field: the runtime serves a model whose signature is
        broken (it warns), the predictor refuses it, so each decides when to read it.
        """
        return parse_signature(self.document, self.source)

    @property
    def mlflow_version(self) -> str | None:
        version = self.document.get("mlflow_version")
        return str(version) if version is not None else None

    @property
    def example_file(self) -> ExampleFile | None:
        info = self.document.get("saved_input_example_info")
        if not isinstance(info, Mapping) or not info.get("artifact_path"):
            return None
        kind = info.get("type")
        return ExampleFile(path=str(info["artifact_path"]), type=str(kind) if kind is not None else None)

    @property
    def sklearn(self) -> SklearnFlavor | None:
        """The sklearn flavour, or None when the model has none."""
        if not self.has("sklearn"):
            return None
        conf = self.flavor("sklearn")
        trusted = conf.get("skops_trusted_types")
        version = conf.get("sklearn_version")
        return SklearnFlavor(
            model_file=str(conf["pickled_model"]) if conf.get("pickled_model") else None,
            serialization_format=str(conf.get("serialization_format") or DEFAULT_SKLEARN_SERIALIZATION),
            sklearn_version=str(version) if version else None,
            trusted_types=tuple(str(t) for t in trusted) if isinstance(trusted, list) else (),
            has_code=bool(conf.get("code")),
        )

    @property
    def predict_fn(self) -> str:
        """The method pyfunc calls to predict (``predict_fn``; ``predict_proba`` and the like are possible)."""
        return str(self.flavor("python_function").get("predict_fn") or "predict")


def parse_mlmodel(text: str, source: str) -> MLmodel:
    """The MLmodel document in ``text``; ModelError when it is not YAML or names no flavour."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelError(f"{source} is not valid YAML: {_yaml_problem(e)}", "save the model again with MLflow") from e
    if not isinstance(document, dict):
        raise ModelError(f"{source} is not a YAML mapping")
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise ModelError(f"{source}: 'flavors' is missing or empty", "log the model with an mlflow.<flavour> API")
    return MLmodel(
        source=source,
        flavors={str(name): (conf if isinstance(conf, dict) else {}) for name, conf in flavors.items()},
        document=document,
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What the YAML parser found wrong and where, rather than its first line (often only "while parsing ...")."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(error)


def read_mlmodel(folder: Path) -> MLmodel:
    """The MLmodel file in a local model folder."""
    path = folder / MLMODEL
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as e:
        raise ModelError(f"{path}: cannot read it ({e.strerror or e})") from e
    return parse_mlmodel(text, str(path))


def parse_signature(document: Mapping[str, Any], source: str = MLMODEL) -> Signature | None:
    """The signature of an MLmodel document, or None when it has none; ModelError when it cannot be read."""
    section = document.get("signature")
    if not isinstance(section, Mapping):
        return None
    inputs = _specs(section.get("inputs"), f"{source}: signature.inputs")
    outputs = _specs(section.get("outputs"), f"{source}: signature.outputs")
    if not inputs and not outputs:
        return None
    return Signature(inputs=inputs, outputs=outputs)


def parse_input_example(text: str | bytes, source: str) -> InputExample | None:
    """A saved input example as columns and rows, or None when it is not a split dataframe (ndarray, dict...)."""
    try:
        example = json.loads(text)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError both are
        raise ModelError(f"{source}: the input example is not JSON ({e})") from e
    if isinstance(example, dict) and "dataframe_split" in example:
        example = example["dataframe_split"]
    if not isinstance(example, dict) or not isinstance(example.get("data"), list):
        return None
    columns = example.get("columns")
    rows = tuple(tuple(row) if isinstance(row, list) else (row,) for row in example["data"])
    return InputExample(columns=tuple(str(c) for c in columns) if columns else None, rows=rows)


def _specs(raw: Any, where: str) -> tuple[Column, ...]:
    if not raw:
        return ()
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise ModelError(f"{where} is not valid JSON ({e})") from e
    try:
        return tuple(_spec(item) for item in items)
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise ModelError(f"{where} is not an MLflow schema ({type(e).__name__}: {e})") from e


def _spec(item: Mapping[str, Any]) -> Column:
    name = item.get("name")
    name = str(name) if name is not None else None
    if item.get("type") == TENSOR:
        spec = item["tensor-spec"]
        dtype = spec.get("dtype")
        shape = tuple(int(n) for n in spec["shape"]) if "shape" in spec else None
        return Column(name=name, type=TENSOR, dtype=str(dtype) if dtype is not None else None, shape=shape)
    return Column(name=name, type=str(item["type"]), required=item.get("required") is not False)
