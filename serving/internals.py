"""Every private KServe and scikit-learn name the runtime uses, each checked before it is trusted.

Two fast paths (and one decoding step) lean on internals that neither library promises to keep:

- KServe's ``ModelServer._serve``, ``ModelServer._rest_server`` and
  ``ModelServer._grpc_server``: between ``start()`` building the REST server and
  serving it, the runtime binds its ``--host`` (KServe always binds 0.0.0.0),
  puts ``fast_lane`` in front of KServe's app, and adds its own gRPC server
  (``grpc_server``, on ``--host`` too) where ``stop()`` finds it.
- scikit-learn's ``sklearn.linear_model._base.LinearModel`` and
  ``_decision_function``: the proof that an estimator's ``predict`` is exactly
  ``X @ coef_.T + intercept_``, which ``sklearn_fast`` then computes itself.

- KServe's ``InferInput._raw_data``: where the gRPC path keeps binary tensor
  data (``raw_input_contents``, what Triton's client sends); when it is there,
  the payload decoder asks KServe's public ``as_numpy`` for the array.
- scikit-learn's boosting internals, for ``tree_fast``: GradientBoosting's
  ``_raw_predict_init`` (the raw value every row starts from) and ``_loss``
  (``predict_proba``); HistGradientBoosting's ``_predictors`` (each tree's
  ``nodes`` record array), ``_baseline_prediction``, ``_preprocessor`` (set
  when features are categorical) and ``_loss`` (``link.inverse``,
  ``predict_proba``). Forests and single trees need none: their public
  ``tree_`` arrays suffice.

Each is checked when it is first needed (does the name exist, with the
signature we call or override?). When a check fails, the runtime takes the
public path (KServe's own app for every request; the estimator's own
``predict``) and logs one line saying which fast path is off and why. Answers
are the same either way, only slower. One thing has no public path: KServe
alone cannot listen on one address, so a ``--host`` other than all interfaces
is then refused, never silently widened.

One more leans on KServe's package layout rather than a name: ``kserve/__init__.py``
imports KServe's Kubernetes client and its CRD classes, which the runtime never uses and
which cost half a second of a cold start, so ``kserve_without_client`` (called here,
before this module's own KServe import) lets the server modules import without it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

KSERVE = "kserve"


# -- KServe: its server modules without its Kubernetes client --------------------------------------


def kserve_without_client() -> None:
    """Make ``kserve`` importable without running ``kserve/__init__.py`` until a name only it defines is used.

    That file imports ``KServeClient`` (with the ``kubernetes`` package) and
    ~80 generated CRD classes, none of which a server uses. The modules the
    runtime imports (``kserve.model``, ``kserve.model_server``,
    ``kserve.errors``, ``kserve.protocol.*``) import each other by module, not
    through the package's names, so the package is registered as a module with
    KServe's ``__path__`` and nothing run yet. The first lookup of any other
    name on it (``from kserve import KServeClient``, ``kserve.Model``) runs
    ``__init__.py`` in that same module, so every name is there and is the same
    object as ever. A no-op when ``kserve`` is already imported; if KServe
    cannot be found as a package, the normal import happens, later, as usual.
    """
    if KSERVE in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(KSERVE)
    except (ImportError, ValueError) as e:
        log.debug("kserve imports as usual: %s", e)
        return
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    package = importlib.util.module_from_spec(spec)
    package.__getattr__ = _run_init_on_first_use(package, spec)  # type: ignore[method-assign]
    sys.modules[KSERVE] = package


def _run_init_on_first_use(package: ModuleType, spec: ModuleSpec) -> Callable[[str], Any]:
    defined: set[str] | None = None

    def missing(name: str) -> Any:
        nonlocal defined
        if name.startswith("__") or "__getattr__" not in vars(package):
            raise AttributeError(f"module {KSERVE!r} has no attribute {name!r}")
        if importlib.util.find_spec(f"{KSERVE}.{name}") is not None:
            return importlib.import_module(f"{KSERVE}.{name}")  # a submodule (``from . import context``)
        if defined is None:
            defined = _names_defined_by(spec)
        if defined and name not in defined:
            # Probes of every module in sys.modules (pickle's and skops's whichmodule, while skops
            # imports) ask for names kserve has never had: no reason to import its client for them.
            raise AttributeError(f"module {KSERVE!r} has no attribute {name!r}")
        del package.__getattr__
        log.debug("running kserve/__init__.py for kserve.%s", name)
        assert spec.loader is not None
        spec.loader.exec_module(package)
        return getattr(package, name)

    return missing


def _names_defined_by(spec: ModuleSpec) -> set[str]:
    """The names ``kserve/__init__.py`` binds (imports, assignments, definitions); empty if that cannot be told.

    Empty means "any name may be defined": a star import, or a file that cannot be read or parsed.
    """
    try:
        tree = ast.parse(Path(spec.origin or "").read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            if any(alias.name == "*" for alias in node.names):
                return set()
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


kserve_without_client()

import numpy as np  # noqa: E402 - after kserve_without_client, which must run before any kserve import
import uvicorn  # noqa: E402
from kserve.model_server import ModelServer  # noqa: E402

from common.errors import StepError  # noqa: E402
from serving.tree_walk import Node  # noqa: E402

ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})

AsgiApp = Any  # an ASGI application: KServe's FastAPI app, or what wraps it
AppWrapper = Callable[[AsgiApp], AsgiApp]
GrpcFactory = Callable[[ModelServer], Any]  # the server -> a gRPC server with async start() and stop(sig)


class HostUnavailable(StepError):
    """The runtime cannot listen on the one address asked for (KServe alone binds all interfaces)."""


class WorkersUnavailable(StepError):
    """The runtime cannot share one socket between workers (the private hook is gone)."""


# -- KServe: bind --host and put the fast lane in front of KServe's app ---------------------------


def model_server_problem() -> str | None:
    """Why ``ModelServer._serve`` cannot be overridden safely with this KServe, or None when it can."""
    serve = getattr(ModelServer, "_serve", None)
    if serve is None:
        return "kserve.ModelServer._serve is gone"
    if not inspect.iscoroutinefunction(serve):
        return "kserve.ModelServer._serve is no longer a coroutine function"
    if list(inspect.signature(serve).parameters) != ["self"]:
        return f"kserve.ModelServer._serve{inspect.signature(serve)} no longer takes only self"
    return None


def model_server(
    host: str, wrap_app: AppWrapper, make_grpc: GrpcFactory, fd: int | None = None, **options: Any
) -> ModelServer:
    """A ModelServer built with ``options`` that listens on ``host`` and serves ``wrap_app(KServe's app)``.

    With ``options["enable_grpc"]`` it also serves ``make_grpc(server)``; with
    ``fd`` its REST server serves that listening socket (one worker of several).
    Without the private hook it is KServe's own ModelServer, serving KServe's
    app (and KServe's gRPC server) on all interfaces; HostUnavailable if
    ``host`` is narrower than that, WorkersUnavailable with ``fd``.
    """
    problem = model_server_problem()
    server = ModelServer(**options) if problem else _HookedModelServer(host, wrap_app, make_grpc, fd, **options)
    problem = problem or getattr(server, "problem", None)
    if problem is not None and fd is not None:
        raise WorkersUnavailable(
            f"cannot run several workers: {problem}", "use --workers 1, or the kserve version pinned in pyproject.toml"
        )
    if problem is not None:
        _fast_lane_off(host, problem)
    return server


class _HookedModelServer(ModelServer):
    """A ModelServer that sets its REST server's host and app after ``start()`` builds it, before it serves."""

    def __init__(self, host: str, wrap_app: AppWrapper, make_grpc: GrpcFactory, fd: int | None, **options: Any) -> None:
        self.grpc_wanted = bool(options.pop("enable_grpc", False))
        super().__init__(enable_grpc=False, **options)
        self.host = host
        self.fd = fd
        self.wrap_app = wrap_app
        self.make_grpc = make_grpc
        self.problem = next(
            (
                f"kserve.ModelServer no longer has {name}"
                for name in ("_rest_server", "_grpc_server")
                if name not in vars(self)
            ),
            None,
        )

    async def _serve(self) -> None:
        if self.problem is None:
            self._hook()
        if self.grpc_wanted:
            # ModelServer.stop() stops what _grpc_server holds; KServe's own would bind [::] only.
            self._grpc_server = self.make_grpc(self)
            self.servers.append(self._grpc_server.start())
        await super()._serve()

    def _hook(self) -> None:
        config = getattr(self._rest_server, "config", None)
        if not isinstance(config, uvicorn.Config):
            self.problem = f"kserve.ModelServer._rest_server has no uvicorn config ({type(self._rest_server).__name__})"
            if self.fd is not None:
                raise WorkersUnavailable(f"cannot run several workers: {self.problem}", "use --workers 1")
            _fast_lane_off(self.host, self.problem)
            return
        from kserve.model_server import app  # the app KServe's REST server imports by name

        config.host = self.host
        config.fd = self.fd  # None: uvicorn binds host and port itself
        config.app = self.wrap_app(app)


def _fast_lane_off(host: str, problem: str) -> None:
    if host not in ALL_INTERFACES:
        raise HostUnavailable(
            f"cannot listen on {host} only: {problem}, and KServe alone listens on all interfaces",
            "use --host 0.0.0.0 where that is safe, or the kserve version pinned in pyproject.toml",
        )
    log.warning("fast lane off (%s): every request goes through KServe's app, with the same answers", problem)


# -- KServe: binary tensor data -------------------------------------------------------------------


def has_raw_data(tensor: Any) -> bool:
    """True when ``tensor`` (a kserve ``InferInput``) carries binary data (gRPC ``raw_input_contents``).

    KServe's gRPC path keeps such data only in ``InferInput._raw_data`` (its
    public ``data`` is then empty) and decodes it in the public ``as_numpy``.
    """
    return getattr(tensor, "_raw_data", None) is not None


# -- scikit-learn: which estimators predict exactly X @ coef_.T + intercept_ ------------------------


class _LinearInternals(NamedTuple):
    base: type
    predicts: tuple[Callable[..., Any], ...]
    decision_functions: tuple[Callable[..., Any], ...]


def is_plain_linear(model: Any) -> bool:
    """True when ``model.predict(X)`` is ``X @ coef_.T + intercept_`` on dense X, by scikit-learn's own classes.

    That holds for estimators that keep ``LinearModel.predict`` (or
    ``MultiOutputLinearModel``'s, which only calls it) and the base or
    ElasticNet's ``_decision_function`` (dense branch): LinearRegression, Ridge,
    Lasso, ElasticNet, ...
    """
    found = _linear_internals()
    if isinstance(found, str):
        log.warning("scikit-learn linear fast path off (%s): the estimator's own predict answers", found)
        return False
    kind = type(model)
    return (
        isinstance(model, found.base)
        and kind.predict in found.predicts
        and getattr(kind, "_decision_function", None) in found.decision_functions
    )


def _linear_internals() -> _LinearInternals | str:
    try:
        from sklearn.linear_model import ElasticNet
        from sklearn.linear_model._base import LinearModel, MultiOutputLinearModel
    except ImportError as e:
        return f"sklearn.linear_model._base.LinearModel cannot be imported: {e}"
    for owner in (LinearModel, ElasticNet):
        decision = getattr(owner, "_decision_function", None)
        if decision is None:
            return f"{owner.__name__}._decision_function is gone"
        if list(inspect.signature(decision).parameters) != ["self", "X"]:
            return f"{owner.__name__}._decision_function{inspect.signature(decision)} is no longer (self, X)"
    return _LinearInternals(
        base=LinearModel,
        predicts=(LinearModel.predict, MultiOutputLinearModel.predict),
        decision_functions=(LinearModel._decision_function, ElasticNet._decision_function),
    )


# -- scikit-learn: what boosted ensembles start from, their trees, and their links ---------------------

TREES_OFF = "scikit-learn tree fast path off (%s): the estimator's own %s answers"
HIST_NODE_FIELDS = frozenset(
    {"value", "feature_idx", "num_threshold", "left", "right", "is_leaf", "depth", "is_categorical"}
)


class HistTrees(NamedTuple):
    """A HistGradientBoosting model's trees, stage by stage (one per class and stage), and where rows start."""

    stages: list[list[Node]]
    baseline: np.ndarray
    categorical: bool


def gradient_boosting_start(model: Any, method: str) -> np.ndarray | None:
    """The raw prediction every row starts from in a GradientBoosting model with a constant ``init_``.

    ``init_`` is ``"zero"`` or one of scikit-learn's Dummy estimators (the
    default), whose answer does not depend on the row; the caller checks that.
    """
    raw_predict_init = getattr(model, "_raw_predict_init", None)
    if not callable(raw_predict_init):
        log.warning(TREES_OFF, f"{type(model).__name__}._raw_predict_init is gone", method)
        return None
    probes = np.zeros((2, model.n_features_in_), dtype=np.float32)
    probes[1] = 1.0
    try:
        start = np.asarray(raw_predict_init(probes), dtype=np.float64)
    except Exception as e:  # noqa: BLE001 - any change in it means: take the public path
        log.warning(TREES_OFF, f"{type(model).__name__}._raw_predict_init failed: {e}", method)
        return None
    if start.shape != (2, model.n_trees_per_iteration_) or not np.array_equal(start[0], start[1]):
        log.warning(TREES_OFF, f"{type(model).__name__}._raw_predict_init no longer gives one start per row", method)
        return None
    return start[0]


def loss_function(model: Any, path: str, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """``model._loss.<path>`` (``predict_proba``, ``link.inverse``): how a boosted model turns sums into answers."""
    found: Any = getattr(model, "_loss", None)
    for name in path.split("."):
        found = getattr(found, name, None)
    if not callable(found):
        log.warning(TREES_OFF, f"{type(model).__name__}._loss.{path} is gone", method)
        return None
    return found


def hist_trees(model: Any, method: str) -> HistTrees | None:
    """The trees of a fitted HistGradientBoosting model, read from its private predictors."""
    stages = getattr(model, "_predictors", None)
    baseline = getattr(model, "_baseline_prediction", None)
    kind = type(model).__name__
    if not isinstance(stages, list) or not isinstance(baseline, np.ndarray) or not hasattr(model, "_preprocessor"):
        log.warning(TREES_OFF, f"{kind}._predictors, _baseline_prediction or _preprocessor is gone", method)
        return None
    trees: list[list[Node]] = []
    categorical = model._preprocessor is not None
    for stage in stages:
        trees.append([])
        for predictor in stage:
            nodes = getattr(predictor, "nodes", None)
            names = getattr(getattr(nodes, "dtype", None), "names", None) or ()
            if not HIST_NODE_FIELDS.issubset(names):
                log.warning(TREES_OFF, f"{kind}'s predictor nodes no longer have {sorted(HIST_NODE_FIELDS)}", method)
                return None
            categorical = categorical or bool(nodes["is_categorical"].any())
            leaf = nodes["is_leaf"].astype(bool)
            trees[-1].append(
                Node(
                    left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
                    right=np.where(leaf, -1, nodes["right"].astype(np.intp)),
                    feature=nodes["feature_idx"],
                    threshold=nodes["num_threshold"],
                    value=nodes["value"].astype(np.float64)[:, None],
                    depth=int(nodes["depth"].max()),
                )
            )
    start = (np.zeros(model.n_trees_per_iteration_) + baseline).ravel()
    return HistTrees(stages=trees, baseline=start, categorical=categorical)


# -- LightGBM: its C library and a Booster's handle in it ------------------------------------------

LIGHTGBM_SINGLE_ROW = (
    "LGBM_BoosterPredictForMatSingleRowFastInit",
    "LGBM_BoosterPredictForMatSingleRowFast",
    "LGBM_FastConfigFree",
    "LGBM_GetLastError",
)


class LightgbmCApi(NamedTuple):
    lib: Any  # the ctypes library the lightgbm package loaded
    handle: Any  # the Booster's ctypes.c_void_p in it


def lightgbm_c_api(booster: Any) -> LightgbmCApi | None:
    """The library and handle ``lightgbm_fast`` calls LightGBM's single-row C API with, or None (logged).

    The C functions are LightGBM's documented C API; reaching them from Python
    needs the package's private ``lightgbm.basic._LIB`` and ``Booster._handle``.
    """
    try:
        from lightgbm import basic
    except ImportError as e:
        problem: str | None = f"lightgbm.basic cannot be imported: {e}"
    else:
        lib, handle = getattr(basic, "_LIB", None), getattr(booster, "_handle", None)
        missing = [name for name in LIGHTGBM_SINGLE_ROW if not hasattr(lib, name)]
        problem = f"lightgbm.basic._LIB.{missing[0]} is gone" if missing else None
        if problem is None and not isinstance(getattr(handle, "value", None), int):
            problem = "lightgbm.Booster._handle is gone"
        if problem is None:
            return LightgbmCApi(lib=lib, handle=handle)
    log.warning("LightGBM single-row fast path off (%s): Booster.predict answers", problem)
    return None
