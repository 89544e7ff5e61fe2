"""A custom ``mlflow.pyfunc.PythonModel``, shipped beside the model through ``code_paths``.

It scores with mpmath, a package the serving runtime does not have, so serving
it proves the model's own requirements reached its environment; and it lives in
its own module, so loading it proves the model's ``code_paths`` did too.
"""

import mlflow.pyfunc
import mpmath
import pandas as pd


class LinearScore(mlflow.pyfunc.PythonModel):
    """A linear model's score, summed with mpmath's exact dot product and rounded once to a float."""

    def __init__(self, columns: list[str], coefficients: list[float], intercept: float) -> None:
        self.columns = columns
        self.coefficients = coefficients
        self.intercept = intercept

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        rows = model_input[self.columns].astype(float).itertuples(index=False)
        scores = [float(mpmath.fdot(row, self.coefficients) + self.intercept) for row in rows]
        return pd.Series(scores, name="quality", index=model_input.index)
