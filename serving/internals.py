"""Every private KServe and scikit-learn name the runtime uses, each checked before it is trusted.

Two fast paths lean on internals that neither library promises to keep:

- KServe's ``ModelServer._serve`` and ``ModelServer._rest_server``: between
  ``start()`` building the REST server and serving it, the runtime binds its
  ``--host`` (KServe always binds 0.0.0.0) and puts ``fast_lane`` in front of
  KServe's app.
- scikit-learn's ``sklearn.linear_model._base.LinearModel`` and
  ``_decision_function``: the proof that an estimator's ``predict`` is exactly
  ``X @ coef_.T + intercept_``, which ``sklearn_fast`` then computes itself.

Each is checked when it is first needed (does the name exist, with the
signature we call or override?). When a check fails, the runtime takes the
public path (KServe's own app for every request; the estimator's own
``predict``) and logs one line saying which fast path is off and why. Answers
are the same either way, only slower. One thing has no public path: KServe
alone cannot listen on one address, so a ``--host`` other than all interfaces
is then refused, never silently widened.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import uvicorn
from kserve import ModelServer

from common.errors import StepError

log = logging.getLogger(__name__)

ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})

AsgiApp = Any  # an ASGI application: KServe's FastAPI app, or what wraps it
AppWrapper = Callable[[AsgiApp], AsgiApp]


class HostUnavailable(StepError):
    """The runtime cannot listen on the one address asked for (KServe alone binds all interfaces)."""


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


def model_server(host: str, wrap_app: AppWrapper, **options: Any) -> ModelServer:
    """A ModelServer built with ``options`` that listens on ``host`` and serves ``wrap_app(KServe's app)``.

    Without the private hook it is KServe's own ModelServer, serving KServe's
    app on all interfaces; HostUnavailable if ``host`` is narrower than that.
    """
    problem = model_server_problem()
    if problem is not None:
        _fast_lane_off(host, problem)
        return ModelServer(**options)
    server = _HookedModelServer(host, wrap_app, **options)
    if server.problem is not None:
        _fast_lane_off(host, server.problem)
    return server


class _HookedModelServer(ModelServer):
    """A ModelServer that sets its REST server's host and app after ``start()`` builds it, before it serves."""

    def __init__(self, host: str, wrap_app: AppWrapper, **options: Any) -> None:
        super().__init__(**options)
        self.host = host
        self.wrap_app = wrap_app
        self.problem = None if "_rest_server" in vars(self) else "kserve.ModelServer no longer has _rest_server"

    async def _serve(self) -> None:
        if self.problem is None:
            self._hook()
        await super()._serve()

    def _hook(self) -> None:
        config = getattr(self._rest_server, "config", None)
        if not isinstance(config, uvicorn.Config):
            self.problem = f"kserve.ModelServer._rest_server has no uvicorn config ({type(self._rest_server).__name__})"
            _fast_lane_off(self.host, self.problem)
            return
        from kserve.model_server import app  # the app KServe's REST server imports by name

        config.host = self.host
        config.app = self.wrap_app(app)


def _fast_lane_off(host: str, problem: str) -> None:
    if host not in ALL_INTERFACES:
        raise HostUnavailable(
            f"cannot listen on {host} only: {problem}, and KServe alone listens on all interfaces",
            "use --host 0.0.0.0 where that is safe, or the kserve version pinned in pyproject.toml",
        )
    log.warning("fast lane off (%s): every request goes through KServe's app, with the same answers", problem)


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
