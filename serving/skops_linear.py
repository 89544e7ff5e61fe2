"""A plain linear regressor's weights, read from its skops file without scikit-learn or skops.

Importing skops takes seconds (``skops.io`` imports nearly all of scikit-learn
and SciPy to list the types it trusts), most of a cold start, while a linear
model that predicts ``X @ coef_.T + intercept_`` needs two arrays. A ``.skops``
file is a zip of ``schema.json`` (each object's class, module and attributes)
and ``.npy`` files, so for the classes in ``PLAIN_LINEAR`` the weights are read
straight from it: ``numpy.load(..., allow_pickle=False)`` and JSON, nothing
from the file executes. The classes are the ones ``internals.is_plain_linear``
accepts with the scikit-learn this runtime pins (a unit test keeps the two in
step).

skops' trust check is not bypassed in substance: these estimator classes,
builtins and numpy arrays are what skops trusts by default, and a file holding
any other type (a ``RandomState``, a custom class, an object array of
something else), an unknown skops protocol, or a node this reader does not
know is left to the normal load, with skops' own check.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCHEMA = "schema.json"
PROTOCOLS = frozenset({2})  # skops.io._protocol.PROTOCOL values whose layout this reader knows
LINEAR_MODELS = {
    "sklearn.linear_model._base": ("LinearRegression",),
    "sklearn.linear_model._coordinate_descent": (
        "ElasticNet",
        "ElasticNetCV",
        "Lasso",
        "LassoCV",
        "MultiTaskElasticNet",
        "MultiTaskElasticNetCV",
        "MultiTaskLasso",
        "MultiTaskLassoCV",
    ),
    "sklearn.linear_model._huber": ("HuberRegressor",),
    "sklearn.linear_model._least_angle": ("Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC"),
    "sklearn.linear_model._omp": ("OrthogonalMatchingPursuit", "OrthogonalMatchingPursuitCV"),
    "sklearn.linear_model._quantile": ("QuantileRegressor",),
    "sklearn.linear_model._theil_sen": ("TheilSenRegressor",),
}
PLAIN_LINEAR = frozenset((module, name) for module, names in LINEAR_MODELS.items() for name in names)
# Nodes below the estimator: builtins and numpy values, as skops writes them (a dict's key types are TypeNodes).
VALUE_LOADERS = frozenset({"DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode"})
VALUE_MODULES = frozenset({"builtins", "numpy"})
NUMBER_KINDS = frozenset("fiu")


@dataclass(frozen=True)
class LinearWeights:
    """What ``predict`` of a plain linear regressor needs: ``X @ coef.T + intercept`` on ``n_features`` columns."""

    class_name: str
    coef: np.ndarray
    intercept: Any  # a float, a numpy scalar or a 1-D array (one per target), as the estimator holds it
    n_features: int


def read_linear_weights(file: Path) -> LinearWeights | None:
    """The weights of the plain linear regressor in the skops ``file``; None when it holds anything else."""
    try:
        with zipfile.ZipFile(file) as archive:
            schema = json.loads(archive.read(SCHEMA))
            state = _estimator_state(schema)
            if state is None:
                return None
            coef = _number(archive, state.get("coef_"))
            intercept = _number(archive, state.get("intercept_"))
            width = _number(archive, state.get("n_features_in_"))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        log.debug("%s: not read as a plain linear model (%s: %s)", file, type(e).__name__, e)
        return None
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2) or intercept is None or type(width) is not int:
        return None
    return LinearWeights(class_name=schema["__class__"], coef=coef, intercept=intercept, n_features=width)


def _estimator_state(schema: Any) -> dict[str, Any] | None:
    """The estimator's attribute nodes, by name, if it is a plain linear class made only of builtins and numpy."""
    if not isinstance(schema, dict) or schema.get("protocol") not in PROTOCOLS:
        return None
    if (schema.get("__module__"), schema.get("__class__")) not in PLAIN_LINEAR or schema.get(
        "__loader__"
    ) != "ObjectNode":
        return None
    state = schema.get("content")
    if not isinstance(state, dict) or state.get("__loader__") != "DictNode" or not _only_values(state):
        return None
    attributes = state.get("content")
    return attributes if isinstance(attributes, dict) else None


def _only_values(node: Any) -> bool:
    """True when every node under ``node`` is a builtins or numpy value of a kind skops writes and trusts."""
    if isinstance(node, list):
        return all(_only_values(item) for item in node)
    if not isinstance(node, dict):
        return True
    if "__loader__" in node and (
        node["__loader__"] not in VALUE_LOADERS or node.get("__module__") not in VALUE_MODULES
    ):
        return False
    return all(_only_values(value) for value in node.values())


def _number(archive: zipfile.ZipFile, node: Any) -> Any:
    """A numeric attribute as the estimator holds it: an int or a float (JSON), or a numpy array or scalar."""
    if not isinstance(node, dict):
        return None
    loader, kind = node.get("__loader__"), node.get("__class__")
    if loader == "JsonNode" and node.get("__module__") == "builtins" and node.get("is_json") is True:
        value = json.loads(node["content"])  # skops keeps JSON-able builtins as JSON text, whatever their type
        return value if type(value) in (int, float) else None
    if loader != "NdArrayNode" or node.get("type") != "numpy":
        return None
    with archive.open(node["file"]) as stream:
        array = np.load(stream, allow_pickle=False)
    if array.dtype.kind not in NUMBER_KINDS:
        return None
    if kind == "ndarray":
        return array
    # A numpy scalar (np.float64): skops stores it as a 0-d array of that dtype and casts it back.
    return array[()] if array.ndim == 0 and array.dtype.name == kind else None
