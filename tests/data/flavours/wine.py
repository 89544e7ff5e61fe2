"""The wine-quality data every flavour trains on: the same split, the same feature columns."""

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

DATA = Path(__file__).parent / "wine-quality.csv"
TARGET = "quality"


def load_split() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Train and test features and targets: a 75/25 split with ``random_state=42``, as the wine example."""
    data = pd.read_csv(DATA)
    train, test = train_test_split(data, test_size=0.25, random_state=42)
    return train.drop(columns=[TARGET]), test.drop(columns=[TARGET]), train[TARGET], test[TARGET]
