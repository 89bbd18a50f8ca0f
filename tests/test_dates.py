"""One calendar arithmetic for every path: ages and month counts built from dates."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from allpath.dates import DAYS_PER_MONTH, age_in_years, months_between


def _random_pairs(count: int, seed: int) -> list[tuple[dt.date, dt.date]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30_000))
        pairs.append((born, born + dt.timedelta(days=rng.randrange(40_000))))
    return pairs


def test_age_is_always_a_plain_two_decimal_number() -> None:
    # Adding a floored fraction to whole years in floats gives 5.6899999999999995 for 5.69,
    # which is unequal to the 5.69 another path computes for the same dates.
    for born, as_of in _random_pairs(20_000, seed=11):
        age = age_in_years(born, as_of)
        assert age == round(age, 2), (born, as_of, age)


@pytest.mark.parametrize(
    ("born", "as_of", "expected"),
    [
        (dt.date(2012, 11, 15), dt.date(2018, 7, 25), 5.69),
        (dt.date(2002, 11, 15), dt.date(2009, 6, 11), 6.56),
        (dt.date(2004, 11, 26), dt.date(2026, 11, 25), 21.99),
        (dt.date(2004, 11, 26), dt.date(2026, 11, 26), 22.0),
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17.99),
        (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18.0),
    ],
)
def test_age_counts_whole_years_from_birthdays_and_floors_the_rest_to_hundredths(
    born: dt.date, as_of: dt.date, expected: float
) -> None:
    assert age_in_years(born, as_of) == expected


def test_age_never_rounds_up_past_what_has_elapsed() -> None:
    for born, as_of in _random_pairs(5_000, seed=12):
        age = age_in_years(born, as_of)
        years = int(age)
        last = born.replace(year=born.year + years) if (born.month, born.day) != (2, 29) else None
        if last is None:
            continue
        following = born.replace(year=born.year + years + 1)
        elapsed = (as_of - last).days / (following - last).days
        assert years + elapsed - 0.01 < age <= years + elapsed + 1e-9


def test_months_between_counts_mean_months_to_one_decimal() -> None:
    assert DAYS_PER_MONTH * 12 == 365.25
    assert months_between(dt.date(2024, 1, 1), dt.date(2025, 1, 1)) == 12.0
    assert months_between(dt.date(2024, 1, 1), dt.date(2024, 1, 1) + dt.timedelta(days=548)) == 18.0
    assert months_between(dt.date(2024, 1, 1), dt.date(2024, 1, 1) + dt.timedelta(days=546)) == 17.9
