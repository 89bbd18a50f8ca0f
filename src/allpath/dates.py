"""Calendar arithmetic the facts are built from, in one place so every path agrees to the last digit.

The FHIR importer and the course history both turn dates into `PatientFacts`; if each did its
own arithmetic the same patient could get an age of 5.69 one way and 5.6899999999999995 the
other, and two unequal facts give two plans. Standard library only: this sits under the core.
"""

from __future__ import annotations

import datetime as dt

# The mean Gregorian month; durations recorded in days, weeks or years become months with it.
DAYS_PER_MONTH = 365.25 / 12


def anniversary(start: dt.date, years: int) -> dt.date:
    """`start` moved on by whole years; 29 February falls on 1 March in common years (the day is reached then)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return dt.date(start.year + years, 3, 1)


def age_in_years(birth_date: dt.date, as_of: dt.date) -> float:
    """Whole years lived plus the elapsed share of the current year, rounded down to 0.01.

    Exact on birthdays: a rule saying `age < 22` turns off on the 22nd birthday, not a day early
    or late as a 365.25-day year would have it. The hundredths are counted in integers, so the
    result is the nearest float to a two-decimal number (5.69, never 5.6899999999999995) and
    flooring never loses a hundredth to rounding error. The caller checks `as_of >= birth_date`.
    """
    years = as_of.year - birth_date.year - ((as_of.month, as_of.day) < (birth_date.month, birth_date.day))
    last = anniversary(birth_date, years)
    following = anniversary(birth_date, years + 1)
    hundredths = (as_of - last).days * 100 // (following - last).days
    return (years * 100 + hundredths) / 100


def months_between(start: dt.date, end: dt.date) -> float:
    """Elapsed months, in mean months, to one decimal (the precision the facts' month thresholds use)."""
    return round((end - start).days / DAYS_PER_MONTH, 1)
