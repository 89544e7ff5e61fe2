"""The Winery app's checked-in tables agree with the data set and the model's training order.

The app ships the feature ranges and grade counts as code (its image has no
CSV); these tests catch the day the data set or the training columns change.
"""

from __future__ import annotations

import pytest

from tests.fixtures.models import WINE_CSV, WINE_FEATURES, WINE_TARGET, load_wine_data
from tests.fixtures.winery import winery_module

features = winery_module("features")
quality = winery_module("quality")


def test_features_are_the_models_inputs_in_training_order() -> None:
    assert list(features.FEATURE_NAMES) == WINE_FEATURES


def test_table_is_what_the_csv_gives() -> None:
    assert features.table_from_csv(WINE_CSV) == features.FEATURES


def test_ranges_match_pandas() -> None:
    """A second opinion on min, max and median, independent of table_from_csv."""
    data = load_wine_data()
    for feature in features.FEATURES:
        column = data[feature.name]
        assert feature.minimum == pytest.approx(column.min()), feature.name
        assert feature.maximum == pytest.approx(column.max()), feature.name
        assert feature.median == pytest.approx(column.median()), feature.name
        assert feature.minimum <= feature.median <= feature.maximum


def test_defaults_are_the_medians_and_show_exactly() -> None:
    assert features.defaults() == [f.median for f in features.FEATURES]
    for feature in features.FEATURES:
        shown = feature.number_format % feature.median
        assert float(shown) == feature.median, f"{feature.name}: {shown} hides the default's digits"


def test_labels_are_unique_and_readable() -> None:
    labels = [f.label for f in features.FEATURES]
    assert len(set(labels)) == len(labels)
    assert "Fixed acidity (g/dm³ tartaric acid)" in labels
    assert "pH" in labels, "pH keeps its case"


def test_format_table_round_trips() -> None:
    namespace = {"Feature": features.Feature}
    exec(features.format_table(features.FEATURES), namespace)  # noqa: S102 - our own generated literal
    assert namespace["FEATURES"] == features.FEATURES


def test_grade_counts_are_the_data_sets() -> None:
    counts = load_wine_data()[WINE_TARGET].value_counts().to_dict()
    assert quality.GRADE_COUNTS == counts
    assert quality.mean_grade() == pytest.approx(load_wine_data()[WINE_TARGET].mean())


@pytest.mark.parametrize(
    ("score", "words", "share"),
    [(3.2, "a poor wine", "0%"), (5.0, "a below-average wine", "4%"), (6.28, "an average wine", "78%"),
     (7.0, "a good wine", "78%"), (8.9, "an excellent wine", "100%")],
)  # fmt: skip
def test_explain_places_the_score(score: float, words: str, share: str) -> None:
    text = quality.explain(score)
    assert text.startswith(f"Predicted {score:.2f}: {words}, better than {share} of the wines")
    assert "from 0 (very bad) to 10 (excellent)" in text
    assert "4,898 wines" in text


@pytest.mark.parametrize("score", [-0.5, 10.01])
def test_explain_warns_outside_the_scale(score: float) -> None:
    assert "outside the 0-10 scale" in quality.explain(score)
    assert "do not trust" in quality.explain(score)
