"""Every value a person can see has a name in the one labels module, so no page falls back to an id."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

import pytest
from pydantic import BaseModel

from allpath.course.events import EVENT_TYPES, CourseEvent
from allpath.errors import UnsupportedLanguageError
from allpath.explain.labels import (
    CATEGORY_LABELS,
    COURSE_STATUS_LABELS,
    DISEASE_STATUS_PHRASES,
    EVENT_LABELS,
    EVENT_VALUE_LABELS,
    FACT_LABELS,
    FAMILY_STRENGTH_LABELS,
    LABEL_TABLES,
    PHASE_LABELS,
    SEVERITY_LABELS,
    STRENGTH_LABELS,
    VALUE_LABELS,
    event_value_label,
    fact_label,
    label,
    labels,
    value_label,
)
from allpath.facts import FACT_KINDS, DiseaseStatus
from allpath.knowledge.schema import LANGUAGES
from allpath.plan import Category, PhaseId, Severity, Strength

EVENT_MODELS: tuple[type[BaseModel], ...] = get_args(get_args(CourseEvent)[0])


def _literal_values(annotation: object) -> tuple[str, ...]:
    """The allowed values of a field typed Literal, Literal | None or tuple[Literal, ...]; () otherwise."""
    if get_origin(annotation) is Literal:
        return tuple(get_args(annotation))
    return tuple(v for arg in get_args(annotation) if arg is not type(None) for v in _literal_values(arg))


def test_every_fact_has_a_label() -> None:
    assert set(FACT_LABELS) == set(FACT_KINDS)


@pytest.mark.parametrize("field", [f for f, k in FACT_KINDS.items() if k.values])
def test_every_allowed_value_of_every_fact_has_a_label(field: str) -> None:
    assert set(FACT_KINDS[field].values) <= set(VALUE_LABELS.get(field, {}))


def test_every_event_type_has_a_label() -> None:
    assert {m.model_fields["type"].default for m in EVENT_MODELS} == set(EVENT_TYPES) == set(EVENT_LABELS)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (m.model_fields["type"].default, name)
        for m in EVENT_MODELS
        for name, info in m.model_fields.items()
        if name != "type" and _literal_values(info.annotation)
    ],
)
def test_every_allowed_value_of_every_event_field_has_a_label(event_type: str, field: str) -> None:
    model = next(m for m in EVENT_MODELS if m.model_fields["type"].default == event_type)
    values = _literal_values(model.model_fields[field].annotation)
    assert set(values) <= set(EVENT_VALUE_LABELS.get(field, {}))


@pytest.mark.parametrize(
    ("literal", "labels"),
    [
        (Category, CATEGORY_LABELS),
        (Strength, STRENGTH_LABELS),
        (Strength, FAMILY_STRENGTH_LABELS),
        (Severity, SEVERITY_LABELS),
        (PhaseId, PHASE_LABELS),
        (DiseaseStatus, DISEASE_STATUS_PHRASES),
        (DiseaseStatus, COURSE_STATUS_LABELS),
    ],
)
def test_every_plan_value_has_a_label(literal: object, labels: dict[str, str]) -> None:
    assert set(get_args(literal)) <= set(labels)


def test_the_field_walk_finds_the_event_enums() -> None:
    # Guards the test above against passing because it found nothing to check.
    found = {name for m in EVENT_MODELS for name, i in m.model_fields.items() if _literal_values(i.annotation)}
    assert {"lineage", "phase", "site", "result", "kind", "therapy", "cd19", "findings"} <= found


# --- every language ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
@pytest.mark.parametrize("table", LABEL_TABLES)
def test_every_label_table_has_every_english_value_in_each_language(table: str, lang: str) -> None:
    english, translated = getattr(labels("en"), table), getattr(labels(lang), table)
    assert set(translated) == set(english)
    for key, value in english.items():
        if isinstance(value, dict):
            assert set(translated[key]) == set(value), f"{table}.{key}"
            assert all(translated[key].values()), f"{table}.{key}"
        else:
            assert translated[key], f"{table}.{key}"


def test_spanish_labels_are_spanish_words() -> None:
    assert label("phase", "maintenance", lang="es") == "Mantenimiento"
    assert value_label("disease_status", "in_remission", lang="es") == "En remisión"
    assert event_value_label("phase", "induction", lang="es") == "Inducción"
    assert fact_label("relapse_site", lang="es") == "Dónde volvió la leucemia"
    assert label("family_strength", "consider", lang="es") != FAMILY_STRENGTH_LABELS["consider"]


def test_every_spanish_family_strength_and_event_label_differs_from_the_english() -> None:
    # Families see these as words, not names: an untranslated one would be an English word on a Spanish page.
    for table in ("family_strength", "event", "course_status", "category", "severity"):
        english, spanish = getattr(labels("en"), table), getattr(labels("es"), table)
        same = [k for k in english if english[k] == spanish[k]]
        assert not same, f"{table}: {same}"


def test_an_unsupported_language_is_a_typed_error_naming_the_field() -> None:
    with pytest.raises(UnsupportedLanguageError) as caught:
        labels("fr")
    assert [p.field for p in caught.value.problems] == ["lang"]
    with pytest.raises(UnsupportedLanguageError):
        value_label("lineage", "B", lang="xx")
