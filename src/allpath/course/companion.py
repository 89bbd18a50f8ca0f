"""The family companion's clinical logic, pure: when a diary entry is urgent, what share of the
maintenance doses was taken, and the cited, two-language texts behind both (`companion.yaml`).

Kept beside the course because both read the child's record; the store keeps the rows and the
web pages show them, but what counts as urgent and how adherence is counted is decided here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from allpath.knowledge import yamlio

Lang = Literal["en", "es"]
LANGUAGES: tuple[Lang, ...] = ("en", "es")
GRADES = (0, 1, 2, 3)
# Temperatures a thermometer can show; outside this a number is a typing slip, not a reading.
MIN_CELSIUS, MAX_CELSIUS = 34.0, 43.0
# The team may set its own fever threshold, within what any fever guidance uses.
MIN_THRESHOLD, MAX_THRESHOLD = 37.5, 39.0
MEDICINES = ("mercaptopurine", "methotrexate")
Frequency = Literal["daily", "weekly"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cite(_Strict):
    source_id: str
    section: str


class CompanionSource(_Strict):
    id: str
    title: str
    publisher: str
    approved: str
    approved_note: str | None = None
    url: str | None = None


class CallItem(_Strict):
    id: str
    always: bool = False
    en: str
    es: str
    citations: list[Cite] = Field(min_length=1)

    def text(self, lang: Lang) -> str:
        return self.es if lang == "es" else self.en


class Symptom(_Strict):
    id: str
    ctcae_term: str
    urgent_from: int | None
    en: str
    es: str
    call_item: str | None = None

    def label(self, lang: Lang) -> str:
        return self.es if lang == "es" else self.en


class Fever(_Strict):
    default_celsius: float
    citations: list[Cite] = Field(min_length=1)


class Adherence(_Strict):
    threshold: float
    en: str
    es: str
    citations: list[Cite] = Field(min_length=1)

    def text(self, lang: Lang) -> str:
        return self.es if lang == "es" else self.en


class Emergency(_Strict):
    en: str
    es: str
    citations: list[Cite] = Field(min_length=1)

    def text(self, lang: Lang) -> str:
        return self.es if lang == "es" else self.en


class Question(_Strict):
    en: str
    es: str
    citations: list[Cite] = Field(min_length=1)

    def text(self, lang: Lang) -> str:
        return self.es if lang == "es" else self.en


class Companion(_Strict):
    sources: list[CompanionSource]
    fever: Fever
    emergency: Emergency
    phase_questions: dict[str, list[Question]]
    call_items: list[CallItem]
    symptoms: list[Symptom]
    citations_symptoms: list[Cite]
    adherence: Adherence

    @model_validator(mode="after")
    def _references_resolve(self) -> Companion:
        ids = {s.id for s in self.sources}
        cited = [
            *self.fever.citations,
            *self.citations_symptoms,
            *self.adherence.citations,
            *self.emergency.citations,
            *(c for qs in self.phase_questions.values() for q in qs for c in q.citations),
            *(c for i in self.call_items for c in i.citations),
        ]
        unknown = sorted({c.source_id for c in cited} - ids)
        if unknown:
            raise ValueError(f"citations name unknown sources: {', '.join(unknown)}")
        items = {i.id for i in self.call_items}
        for s in self.symptoms:
            if s.call_item is not None and s.call_item not in items:
                raise ValueError(f"symptoms.{s.id}.call_item: no call item {s.call_item}")
            if s.urgent_from is not None and s.urgent_from not in GRADES:
                raise ValueError(f"symptoms.{s.id}.urgent_from: must be one of {GRADES}")
        return self

    @property
    def source_map(self) -> dict[str, CompanionSource]:
        return {s.id: s for s in self.sources}

    def call_item(self, item_id: str) -> CallItem:
        return next(i for i in self.call_items if i.id == item_id)

    def symptom(self, symptom_id: str) -> Symptom:
        return next(s for s in self.symptoms if s.id == symptom_id)

    def chosen_call_items(self, chosen: Iterable[str]) -> list[CallItem]:
        """The items always shown, then the ones the team chose, in file order."""
        extra = set(chosen)
        return [i for i in self.call_items if i.always or i.id in extra]


@cache
def load_companion() -> Companion:
    text = (resources.files("allpath.course") / "companion.yaml").read_text(encoding="utf-8")
    return Companion.model_validate(yamlio.safe_load(text))


# --- temperatures --------------------------------------------------------------------------


def fahrenheit(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 1)


def format_temperature(celsius: float, lang: Lang) -> str:
    c = f"{celsius:.1f}".replace(".", ",") if lang == "es" else f"{celsius:.1f}"
    f = f"{fahrenheit(celsius):.1f}".replace(".", ",") if lang == "es" else f"{fahrenheit(celsius):.1f}"
    return f"{c} °C ({f} °F)"


# --- the diary -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Urgency:
    """Why an entry needs a call now: the call items it touches (empty: not urgent)."""

    reasons: tuple[str, ...]

    @property
    def urgent(self) -> bool:
        return bool(self.reasons)


def urgency(temperature_c: float | None, grades: dict[str, int], threshold_c: float, companion: Companion) -> Urgency:
    """An entry is urgent when the temperature reaches the team's threshold or a symptom reaches
    its urgent grade. A temperature not taken is not a normal one: it is simply not counted."""
    reasons: list[str] = []
    if temperature_c is not None and temperature_c >= threshold_c:
        reasons.append("fever")
    for s in companion.symptoms:
        grade = grades.get(s.id)
        if grade is not None and s.urgent_from is not None and grade >= s.urgent_from and s.call_item:
            reasons.append(s.call_item)
    return Urgency(tuple(dict.fromkeys(reasons)))


# --- maintenance doses --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prescription:
    medicine: str
    dose_mg: float
    frequency: Frequency
    start: dt.date


def due_dates(prescriptions: list[Prescription], medicine: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The days a dose of `medicine` was due in [start, end], following each prescription from its
    start until the next one of the same medicine (a dose change replaces the schedule)."""
    rx = sorted((p for p in prescriptions if p.medicine == medicine), key=lambda p: p.start)
    days: list[dt.date] = []
    for i, p in enumerate(rx):
        until = rx[i + 1].start - dt.timedelta(days=1) if i + 1 < len(rx) else end
        day = p.start
        step = dt.timedelta(days=1 if p.frequency == "daily" else 7)
        while day <= min(until, end):
            if day >= start:
                days.append(day)
            day += step
    return days


@dataclass(frozen=True, slots=True)
class AdherenceResult:
    medicine: str
    days: int  # the window
    due: int
    taken: int
    missed: int
    not_recorded: int

    @property
    def rate(self) -> float | None:
        """Taken over recorded doses; None when nothing was recorded. Days with no tick are
        counted apart (`not_recorded`), never as missed: unknown is not read as negative."""
        recorded = self.taken + self.missed
        return self.taken / recorded if recorded else None

    def below(self, threshold: float) -> bool:
        return self.rate is not None and self.rate < threshold


def adherence(
    prescriptions: list[Prescription], doses: dict[tuple[str, dt.date], bool], medicine: str, as_of: dt.date, days: int
) -> AdherenceResult:
    start = as_of - dt.timedelta(days=days - 1)
    due = due_dates(prescriptions, medicine, start, as_of)
    taken = sum(1 for d in due if doses.get((medicine, d)) is True)
    missed = sum(1 for d in due if doses.get((medicine, d)) is False)
    return AdherenceResult(medicine, days, len(due), taken, missed, len(due) - taken - missed)
