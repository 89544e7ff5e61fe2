"""Train wine-quality models and log each with its MLflow flavour, under the flavour's name, in one run.

Each flavour logs its model as a user would (the flavour's own ``log_model``,
a signature and an input example), so MLflow writes the requirements that
flavour needs beside the model, and the serving environment is built from them.
One run logs them all: MLflow and the ML libraries are imported once.
"""

import argparse
import logging

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.metrics import mean_squared_error
from wine import load_split

log = logging.getLogger("flavours")


def sklearn_skops(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A linear model, saved in MLflow 3.17's default scikit-learn format (skops)."""
    import mlflow.sklearn
    from sklearn.linear_model import ElasticNet

    model = ElasticNet(alpha=0.5, l1_ratio=0.1, random_state=42).fit(train_x, train_y)
    mlflow.sklearn.log_model(model, **_logged(name, train_x, model.predict))
    return model.predict


def sklearn_tree_cloudpickle(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A random forest, pickled with cloudpickle (skops refuses tree types it is not told to trust)."""
    import mlflow.sklearn
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=42, n_jobs=1).fit(train_x, train_y)
    mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **_logged(name, train_x, model.predict))
    return model.predict


def sklearn_pipeline(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A Pipeline whose first step picks pandas columns by name: it needs a DataFrame, not an array."""
    import mlflow.sklearn
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    skewed = ["residual sugar", "chlorides", "free sulfur dioxide", "total sulfur dioxide"]
    columns = ColumnTransformer(
        [("log", FunctionTransformer(np.log1p), skewed), ("scale", StandardScaler(), ["alcohol", "density", "pH"])],
        remainder="drop",
    )
    model = Pipeline([("columns", columns), ("ridge", Ridge(alpha=1.0))]).fit(train_x, train_y)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.sklearn.log_model(model, skops_trusted_types=trusted, **_logged(name, train_x, model.predict))
    return model.predict


def xgboost(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A booster trained with xgboost's native API (no scikit-learn needed to load it).

    The requirement names the CPU build, ``xgboost-cpu``, which is what this
    model needs: MLflow's default would also pin ``xgboost``, whose linux wheel
    pulls the ~200 MB ``nvidia-nccl-cu12`` a CPU model never uses.
    """
    import mlflow.xgboost
    import xgboost as xgb

    params = {"max_depth": 4, "eta": 0.3, "objective": "reg:squarederror", "nthread": 1, "seed": 42}
    booster = xgb.train(params, xgb.DMatrix(train_x, label=train_y), num_boost_round=50)

    def predict(features: pd.DataFrame) -> np.ndarray:
        return booster.predict(xgb.DMatrix(features))

    requirements = [f"xgboost-cpu=={xgb.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}"]
    mlflow.xgboost.log_model(booster, pip_requirements=requirements, **_logged(name, train_x, predict))
    return predict


def lightgbm(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A small LightGBM regressor (scikit-learn API), deterministic on any number of cores."""
    import lightgbm as lgb
    import mlflow.lightgbm

    model = lgb.LGBMRegressor(
        n_estimators=50, num_leaves=15, random_state=42, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1
    ).fit(train_x, train_y)
    mlflow.lightgbm.log_model(model, **_logged(name, train_x, model.predict))
    return model.predict


def onnx(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """An ElasticNet converted with skl2onnx: one float tensor in (``input_0``, 11 columns), one out."""
    import mlflow.onnx
    import onnxruntime
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import ElasticNet

    model = ElasticNet(alpha=0.5, l1_ratio=0.1, random_state=42).fit(train_x, train_y)
    converted = to_onnx(model, initial_types=[("input_0", FloatTensorType([None, train_x.shape[1]]))], target_opset=17)
    session = onnxruntime.InferenceSession(converted.SerializeToString())
    output = session.get_outputs()[0].name

    def predict(features: pd.DataFrame) -> np.ndarray:
        return session.run(None, {"input_0": features.to_numpy(np.float32)})[0][:, 0]

    example = {"input_0": train_x.head(3).to_numpy(np.float32)}
    signature = infer_signature(example, {output: session.run(None, example)[0]})
    mlflow.onnx.log_model(
        converted,
        name=name,
        signature=signature,
        input_example=example,
        onnx_execution_providers=["CPUExecutionProvider"],
    )
    return predict


def pyfunc_custom(name: str, train_x: pd.DataFrame, train_y: pd.Series):
    """A custom PythonModel from its own module (``code_paths``) that needs mpmath (declared)."""
    import mpmath
    from custom_model import LinearScore
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(train_x, train_y)
    model = LinearScore(list(train_x.columns), [float(c) for c in fitted.coef_], float(fitted.intercept_))

    def predict(features: pd.DataFrame) -> np.ndarray:
        return model.predict(None, features).to_numpy()

    mlflow.pyfunc.log_model(
        python_model=model,
        code_paths=["custom_model.py"],
        extra_pip_requirements=[f"mpmath=={mpmath.__version__}"],
        **_logged(name, train_x, predict),
    )
    return predict


def _logged(name: str, train_x: pd.DataFrame, predict) -> dict:
    """What every flavour logs with its model, as the wine example does: its name, a signature, an input example."""
    return {"name": name, "signature": infer_signature(train_x, predict(train_x)), "input_example": train_x.head(3)}


FLAVOURS = {
    "sklearn-skops": sklearn_skops,
    "sklearn-tree-cloudpickle": sklearn_tree_cloudpickle,
    "sklearn-pipeline": sklearn_pipeline,
    "xgboost": xgboost,
    "lightgbm": lightgbm,
    "onnx": onnx,
    "pyfunc-custom": pyfunc_custom,
}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("flavours", help=f"comma-separated, or all: {', '.join(FLAVOURS)}")
    wanted = parser.parse_args().flavours
    flavours = list(FLAVOURS) if wanted == "all" else wanted.split(",")
    unknown = sorted(set(flavours) - set(FLAVOURS))
    if unknown:
        parser.error(f"unknown flavours {unknown}; known: {', '.join(FLAVOURS)}")

    train_x, test_x, train_y, test_y = load_split()
    with mlflow.start_run():
        for flavour in flavours:
            predict = FLAVOURS[flavour](flavour, train_x, train_y)
            rmse = float(np.sqrt(mean_squared_error(test_y, predict(test_x))))
            mlflow.log_metric(f"rmse_{flavour.replace('-', '_')}", rmse)
            log.info("%s: rmse %.4f", flavour, rmse)


if __name__ == "__main__":
    main()
