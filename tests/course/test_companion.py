"""The companion's pure rules: when a diary entry is urgent, and how adherence is counted."""

from __future__ import annotations

import datetime as dt

from allpath.course.companion import Prescription, adherence, due_dates, format_temperature, load_companion, urgency

C = load_companion()
DAY = dt.date(2026, 11, 1)


def test_companion_texts_load_with_every_citation_resolved_and_both_languages() -> None:
    sources = C.source_map
    for item in C.call_items:
        assert item.en.strip() and item.es.strip(), item.id
        assert all(c.source_id in sources for c in item.citations)
    assert C.fever.default_celsius == 38.0


def test_temperature_at_the_default_threshold_is_urgent() -> None:
    assert urgency(38.0, {}, 38.0, C).reasons == ("fever",)
    assert urgency(38.5, {}, 38.0, C).urgent


def test_temperature_below_the_teams_threshold_is_not_urgent() -> None:
    assert not urgency(38.2, {}, 38.3, C).urgent


def test_temperature_not_taken_is_not_read_as_normal_but_does_not_flag_either() -> None:
    assert not urgency(None, {"tiredness": 3}, 38.0, C).urgent
    assert urgency(None, {"breathing": 1}, 38.0, C).reasons == ("breathing",)


def test_mild_bleeding_is_noted_but_a_lot_of_bleeding_is_urgent() -> None:
    assert not urgency(None, {"bleeding": 1}, 38.0, C).urgent
    assert urgency(None, {"bleeding": 2}, 38.0, C).reasons == ("bleeding",)


def test_fahrenheit_shown_beside_celsius_in_each_language() -> None:
    assert format_temperature(38.0, "en") == "38.0 °C (100.4 °F)"
    assert format_temperature(38.0, "es") == "38,0 °C (100,4 °F)"


def test_thirty_days_with_three_missed_is_ninety_percent_and_not_flagged() -> None:
    rx = [Prescription("mercaptopurine", 50, "daily", DAY)]
    as_of = DAY + dt.timedelta(days=29)
    doses = {("mercaptopurine", DAY + dt.timedelta(days=i)): i not in (3, 10, 20) for i in range(30)}
    result = adherence(rx, doses, "mercaptopurine", as_of, 30)
    assert (result.due, result.taken, result.missed, result.not_recorded) == (30, 27, 3, 0)
    assert result.rate == 0.9
    assert not result.below(0.9)


def test_four_missed_of_thirty_is_flagged_below_ninety_percent() -> None:
    rx = [Prescription("mercaptopurine", 50, "daily", DAY)]
    doses = {("mercaptopurine", DAY + dt.timedelta(days=i)): i >= 4 for i in range(30)}
    assert adherence(rx, doses, "mercaptopurine", DAY + dt.timedelta(days=29), 30).below(0.9)


def test_days_without_a_tick_are_not_counted_as_missed() -> None:
    rx = [Prescription("mercaptopurine", 50, "daily", DAY)]
    doses = {("mercaptopurine", DAY + dt.timedelta(days=i)): True for i in range(10)}
    result = adherence(rx, doses, "mercaptopurine", DAY + dt.timedelta(days=29), 30)
    assert (result.taken, result.missed, result.not_recorded, result.rate) == (10, 0, 20, 1.0)


def test_weekly_methotrexate_is_due_every_seventh_day_and_a_dose_change_restarts_the_schedule() -> None:
    rx = [
        Prescription("methotrexate", 20, "weekly", DAY),
        Prescription("methotrexate", 15, "weekly", DAY + dt.timedelta(days=17)),
    ]
    days = due_dates(rx, "methotrexate", DAY, DAY + dt.timedelta(days=30))
    assert [(d - DAY).days for d in days] == [0, 7, 14, 17, 24]


def test_nothing_recorded_gives_no_rate_and_no_flag() -> None:
    rx = [Prescription("mercaptopurine", 50, "daily", DAY)]
    result = adherence(rx, {}, "mercaptopurine", DAY + dt.timedelta(days=5), 30)
    assert result.rate is None and not result.below(0.9)


def test_each_first_line_phase_has_cited_questions_in_both_languages() -> None:
    for phase in ("induction", "consolidation", "maintenance"):
        questions = C.phase_questions[phase]
        assert questions, phase
        assert all(q.en.endswith("?") and q.es.startswith("¿") and q.citations for q in questions)
