"""Wine quality: an ElasticNet regression on the UCI white-wine data set.

The classic MLflow example, as a FuseML codeset: it trains on
wine-quality.csv, logs its parameters, rmse/mae/r2, and the model with a
signature and an input example, so that the predictor can serve it and build
a probe request from it.
"""

import argparse
import logging
from importlib.metadata import version
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).parent / "wine-quality.csv"
TARGET = "quality"
log = logging.getLogger("wine")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", default="0.5")
    parser.add_argument("--l1-ratio", default="0.1")
    args = parser.parse_args()
    alpha, l1_ratio = float(args.alpha), float(args.l1_ratio)

    data = pd.read_csv(DATA)
    train, test = train_test_split(data, test_size=0.25, random_state=42)
    train_x, test_x = train.drop(columns=[TARGET]), test.drop(columns=[TARGET])
    train_y, test_y = train[TARGET], test[TARGET]

    with mlflow.start_run():
        model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
        model.fit(train_x, train_y)
        predicted = model.predict(test_x)
        metrics = {
            "rmse": float(np.sqrt(mean_squared_error(test_y, predicted))),
            "mae": float(mean_absolute_error(test_y, predicted)),
            "r2": float(r2_score(test_y, predicted)),
        }
        # The MLflow project run already logged the parameters as given;
        # log them again only when run by hand (same strings, so no conflict).
        mlflow.log_params({"alpha": args.alpha, "l1_ratio": args.l1_ratio})
        mlflow.log_metrics(metrics)
        log.info("ElasticNet(alpha=%s, l1_ratio=%s): %s", alpha, l1_ratio, metrics)
        signature = infer_signature(train_x, predicted)
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=train_x.head(3),
            pip_requirements=model_requirements(),
        )


def model_requirements() -> list[str]:
    """The packages the model needs to load and predict, at the versions it was trained with.

    Stated rather than left to MLflow: without ``pip_requirements`` MLflow infers them by
    reloading the model in a subprocess, most of this script's run time (the same list).
    """
    return [f"{name}=={version(name)}" for name in ("numpy", "pandas", "scikit-learn", "scipy", "skops")]


if __name__ == "__main__":
    main()
