"""The FHIR import's alerts, loaded from data (`alerts.yaml`) and checked against a knowledge base.

Each alert has an id, a severity, a message template (`str.format` fields the importer fills)
and the source sections it cites. `check_alerts` is what an `Importer` runs at construction:
every alert the importer can raise must be defined, and every source and section cited must be
in the knowledge base, or it fails naming the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from allpath.errors import ConfigurationError, field_path
from allpath.knowledge import KnowledgeBase, yamlio
from allpath.plan import Alert, Citation, Severity


class ImporterConfigError(ConfigurationError):
    """The import alerts are not all defined, or cite a source section the knowledge base lacks."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertCitation(_Strict):
    source_id: str = Field(min_length=1)
    section: str = Field(min_length=1)


class AlertDefinition(_Strict):
    id: str = Field(pattern=r"^fhir-[a-z0-9-]+$")
    severity: Severity
    message: str = Field(min_length=1, description="A `str.format` template; the importer fills its fields.")
    citations: tuple[AlertCitation, ...] = Field(min_length=1)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in Formatter().parse(self.message) if name)

    def alert(self, **fields: Any) -> Alert:
        return Alert(
            id=self.id,
            severity=self.severity,
            message=self.message.format(**fields),
            citations=[Citation(source_id=c.source_id, section=c.section) for c in self.citations],
        )


class AlertsFile(_Strict):
    alerts: tuple[AlertDefinition, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> AlertsFile:
        seen: set[str] = set()
        for a in self.alerts:
            if a.id in seen:
                raise ValueError(f"alert {a.id!r} is defined twice")
            seen.add(a.id)
        return self


@cache
def alert_definitions() -> dict[str, AlertDefinition]:
    """The alerts of `allpath/fhir/alerts.yaml`, by id (validated; a bad file raises ImporterConfigError)."""
    text = (resources.files("allpath.fhir") / "alerts.yaml").read_text(encoding="utf-8")
    try:
        parsed = AlertsFile.model_validate(yamlio.safe_load(text))
    except ValidationError as exc:
        lines = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ImporterConfigError(f"allpath/fhir/alerts.yaml: {lines}") from None
    return {a.id: a for a in parsed.alerts}


def check_alerts(
    definitions: Mapping[str, AlertDefinition], kb: KnowledgeBase, raised: Iterable[tuple[str, Iterable[str]]]
) -> None:
    """Fail (ImporterConfigError, naming the alert) unless every alert in `raised` (id and the
    message fields the importer fills) is defined with those fields, and every source and section
    any definition cites is in `kb`."""
    problems: list[str] = []
    for alert_id, fields in raised:
        definition = definitions.get(alert_id)
        if definition is None:
            problems.append(f"alert {alert_id!r} is raised by the importer but not defined")
        elif unknown := sorted(definition.fields - set(fields)):
            problems.append(f"alert {alert_id!r}: its message uses {unknown}, which the importer does not fill")
    for definition in definitions.values():
        for c in definition.citations:
            source = kb.sources.get(c.source_id)
            if source is None:
                problems.append(
                    f"alert {definition.id!r} cites source {c.source_id!r}, "
                    f"which the knowledge base ({kb.version}) does not hold"
                )
            elif c.section not in source.sections:
                problems.append(
                    f"alert {definition.id!r} cites section {c.section!r} of {c.source_id!r}, "
                    "which the knowledge base does not list"
                )
    if problems:
        raise ImporterConfigError("the FHIR import alerts: " + "; ".join(problems))
