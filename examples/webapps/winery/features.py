"""The wine model's eleven inputs, in training order, with ranges taken from the data set.

The table is checked in so the app (and its image) works without the data set;
``python features.py wine-quality.csv`` prints it again from the CSV when the
data set changes, and a unit test checks that the two still agree.

Ranges are the data set's minimum and maximum and the default is its median:
a page that opens on a typical wine, and fields that cannot leave the region
the model was trained on (a linear model extrapolates without warning).
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Units of the UCI "Wine Quality" data set (Cortez et al., 2009); not in the CSV.
UNITS: dict[str, str] = {
    "fixed acidity": "g/dm³ tartaric acid",
    "volatile acidity": "g/dm³ acetic acid",
    "citric acid": "g/dm³",
    "residual sugar": "g/dm³",
    "chlorides": "g/dm³ sodium chloride",
    "free sulfur dioxide": "mg/dm³",
    "total sulfur dioxide": "mg/dm³",
    "density": "g/cm³",
    "pH": "",
    "sulphates": "g/dm³ potassium sulphate",
    "alcohol": "% vol",
}
TARGET = "quality"
# A field shows the fewest decimals that write this share of the data set's values exactly.
DECIMALS_COVERAGE = 0.98


@dataclass(frozen=True)
class Feature:
    """One model input: its column name (the model's), unit, data-set range and display precision."""

    name: str
    unit: str
    minimum: float
    maximum: float
    median: float
    decimals: int

    @property
    def label(self) -> str:
        """The field's label, also its aria-label: what a person and a browser test look for."""
        # Capitalise "fixed acidity" but not "pH".
        title = self.name if self.name[1:2].isupper() else self.name[:1].upper() + self.name[1:]
        return f"{title} ({self.unit})" if self.unit else title

    @property
    def step(self) -> float:
        return round(10.0**-self.decimals, self.decimals)

    @property
    def number_format(self) -> str:
        return f"%.{self.decimals}f"

    @property
    def help(self) -> str:
        fmt = f"{{:.{self.decimals}f}}"
        return (
            f"Wines in the training data range from {fmt.format(self.minimum)} to "
            f"{fmt.format(self.maximum)}; the median is {fmt.format(self.median)}."
        )


# fmt: off
FEATURES: tuple[Feature, ...] = (
    Feature("fixed acidity", "g/dm³ tartaric acid", 3.8, 14.2, 6.8, 1),
    Feature("volatile acidity", "g/dm³ acetic acid", 0.08, 1.1, 0.26, 3),
    Feature("citric acid", "g/dm³", 0.0, 1.66, 0.32, 2),
    Feature("residual sugar", "g/dm³", 0.6, 65.8, 5.2, 2),
    Feature("chlorides", "g/dm³ sodium chloride", 0.009, 0.346, 0.043, 3),
    Feature("free sulfur dioxide", "mg/dm³", 2.0, 289.0, 34.0, 0),
    Feature("total sulfur dioxide", "mg/dm³", 9.0, 440.0, 134.0, 0),
    Feature("density", "g/cm³", 0.98711, 1.03898, 0.99374, 5),
    Feature("pH", "", 2.72, 3.82, 3.18, 2),
    Feature("sulphates", "g/dm³ potassium sulphate", 0.22, 1.08, 0.47, 2),
    Feature("alcohol", "% vol", 8.0, 14.2, 10.4, 1),
)
# fmt: on
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def defaults() -> list[float]:
    """Every feature at its data-set median, in training order."""
    return [f.median for f in FEATURES]


def table_from_csv(path: Path) -> tuple[Feature, ...]:
    """Compute the table from the data set: every column but ``quality``, in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    table = []
    for index, name in enumerate(header):
        if name == TARGET:
            continue
        texts = [row[index] for row in body]
        values = [float(text) for text in texts]
        table.append(
            Feature(
                name=name,
                unit=UNITS.get(name, ""),
                minimum=min(values),
                maximum=max(values),
                median=statistics.median(values),
                decimals=_decimals(texts),
            )
        )
    return tuple(table)


def _decimals(texts: Sequence[str]) -> int:
    """The fewest decimals that write at least ``DECIMALS_COVERAGE`` of ``texts`` exactly."""
    counts = sorted(len(t.partition(".")[2].rstrip("0")) for t in texts)
    return counts[max(0, int(len(counts) * DECIMALS_COVERAGE) - 1)]


def format_table(table: Iterable[Feature]) -> str:
    """The table as the Python literal above, to paste after the data set changes."""
    lines = ["FEATURES: tuple[Feature, ...] = ("]
    for f in table:
        name, unit = json.dumps(f.name, ensure_ascii=False), json.dumps(f.unit, ensure_ascii=False)
        lines.append(f"    Feature({name}, {unit}, {f.minimum!r}, {f.maximum!r}, {f.median!r}, {f.decimals}),")
    lines.append(")")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python features.py path/to/wine-quality.csv")
    print(format_table(table_from_csv(Path(sys.argv[1]))))
