"""What a predicted quality score means, in one or two sentences a person can read.

The data set's ``quality`` is the median grade of at least three wine tasters
on a 0 (very bad) to 10 (excellent) scale. The model is a regression, so its
answer is a number such as 6.23 rather than a grade; the explanation places it
among the wines the model learned from. The grade counts are checked in (like
the feature table) and checked against the CSV by a unit test.
"""

from __future__ import annotations

SCALE = (0, 10)
# How many wines of the data set got each grade.
GRADE_COUNTS: dict[int, int] = {3: 20, 4: 163, 5: 1457, 6: 2198, 7: 880, 8: 175, 9: 5}
# Bands of the tasters' scale, as lower bounds: (from, words).
BANDS: tuple[tuple[float, str], ...] = (
    (float("-inf"), "a poor wine"),
    (4.5, "a below-average wine"),
    (5.5, "an average wine"),
    (6.5, "a good wine"),
    (7.5, "a very good wine"),
    (8.5, "an excellent wine"),
)


def total_wines() -> int:
    return sum(GRADE_COUNTS.values())


def mean_grade() -> float:
    return sum(grade * count for grade, count in GRADE_COUNTS.items()) / total_wines()


def share_below(score: float) -> float:
    """The share of the data set's wines graded strictly below ``score`` (0..1)."""
    return sum(count for grade, count in GRADE_COUNTS.items() if grade < score) / total_wines()


def band(score: float) -> str:
    words = BANDS[0][1]
    for lower, text in BANDS:
        if score >= lower:
            words = text
    return words


def explain(score: float) -> str:
    """One short paragraph: the band, the comparison with the training wines, and the scale."""
    low, high = SCALE
    grades = sorted(GRADE_COUNTS)
    scale = (
        f"Quality is the tasters' median grade from {low} (very bad) to {high} (excellent); "
        f"the {total_wines():,} wines the model learned from were graded {grades[0]} to {grades[-1]}, "
        f"{mean_grade():.2f} on average."
    )
    if not low <= score <= high:
        return (
            f"{score:.2f} is outside the {low}-{high} scale: these measurements are probably far from "
            f"any wine the model has seen, so do not trust this prediction. {scale}"
        )
    return (
        f"Predicted {score:.2f}: {band(score)}, better than {share_below(score):.0%} of the wines "
        f"in the data set. {scale}"
    )
