"""Wine quality as an ONNX model: an ElasticNet trained with scikit-learn, converted with skl2onnx.

FuseML's ONNX example codeset, for MLflow 3: it logs the parameters,
rmse/mae/r2, and the ONNX model (``mlflow.onnx``) with a signature naming its
one input tensor, ``input_0`` (11 float32 columns, the wine features in
training order), and an input example. MLflow records onnx and onnxruntime as
the model's requirements, so the predictor serves it in an environment that
has them.
"""

import argparse
import logging
from pathlib import Path

import mlflow
import mlflow.onnx
import numpy as np
import onnxruntime
import pandas as pd
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).parent / "wine-quality.csv"
TARGET = "quality"
INPUT = "input_0"
log = logging.getLogger("wine-onnx")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", default="0.5")
    parser.add_argument("--l1-ratio", default="0.5")
    args = parser.parse_args()
    alpha, l1_ratio = float(args.alpha), float(args.l1_ratio)

    data = pd.read_csv(DATA)
    train, test = train_test_split(data, test_size=0.25, random_state=42)
    train_x, test_x = train.drop(columns=[TARGET]), test.drop(columns=[TARGET])
    train_y, test_y = train[TARGET], test[TARGET]

    with mlflow.start_run():
        model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42).fit(train_x, train_y)
        converted = to_onnx(model, initial_types=[(INPUT, FloatTensorType([None, train_x.shape[1]]))], target_opset=17)
        session = onnxruntime.InferenceSession(converted.SerializeToString())
        output = session.get_outputs()[0].name
        predicted = session.run(None, {INPUT: test_x.to_numpy(np.float32)})[0][:, 0]
        metrics = {
            "rmse": float(np.sqrt(mean_squared_error(test_y, predicted))),
            "mae": float(mean_absolute_error(test_y, predicted)),
            "r2": float(r2_score(test_y, predicted)),
        }
        # The MLflow project run already logged the parameters as given;
        # log them again only when run by hand (same strings, so no conflict).
        mlflow.log_params({"alpha": args.alpha, "l1_ratio": args.l1_ratio})
        mlflow.log_metrics(metrics)
        log.info("ElasticNet(alpha=%s, l1_ratio=%s) as ONNX: %s", alpha, l1_ratio, metrics)
        example = {INPUT: train_x.head(3).to_numpy(np.float32)}
        signature = infer_signature(example, {output: session.run(None, example)[0]})
        mlflow.onnx.log_model(
            converted,
            name="model",
            signature=signature,
            input_example=example,
            onnx_execution_providers=["CPUExecutionProvider"],
        )


if __name__ == "__main__":
    main()
