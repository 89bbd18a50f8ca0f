"""Plain-language names for facts and rules, shared by every output that shows a plan.

The core holds them so that the text, the web pages, FHIR and CDS Hooks all say the same thing
(adapters import the core, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from allpath.errors import Problem, UnsupportedLanguageError
from allpath.knowledge import KnowledgeBase
from allpath.knowledge.schema import LANGUAGES, AlertRule, NotRecommendedRule, RecommendationRule
from allpath.plan import Alert, NotRecommended, Plan, Recommendation

FACT_LABELS: dict[str, str] = {
    "age_years": "Age",
    "lineage": "Whether the leukemia is B-cell or T-cell",
    "ph_status": "Philadelphia chromosome (BCR-ABL1) status",
    "cns_involvement": "Leukemia in the brain or spinal fluid",
    "disease_status": "Where the illness stands now",
    "completed_phases": "Treatment phases already finished",
    "mrd_status": "Minimal residual disease (MRD) result",
    "remission_count": "Number of complete remissions so far",
    "relapse_count": "Number of relapses so far",
    "remission_duration_months": "Length of the remission before the relapse",
    "prior_regimen_count": "Number of chemotherapy regimens already received",
    "expected_survival_months": "The care team's estimate of how long life may last",
    "phase_in_progress": "The treatment phase under way now",
    "mrd_timepoint": "When the MRD result was taken",
    "relapse_site": "Where the leukemia came back",
    "months_from_diagnosis_to_relapse": "Time from diagnosis to the relapse",
    "relapse_during_therapy": "Whether the relapse came during treatment",
    "months_from_therapy_end_to_relapse": "Time from the end of treatment to the relapse",
    "cd19_status": "CD19 on the leukemia cells",
    "cd20_status": "CD20 on the leukemia cells",
    "cd22_status": "CD22 on the leukemia cells",
    "genetic_subtypes": "Genetic findings in the leukemia cells",
    "prior_therapies": "Therapies already received",
    "fit_for_intensive_therapy": "Whether intensive chemotherapy would be safe",
    "pregnant": "Pregnancy",
    "down_syndrome": "Down syndrome",
}


_MARKER = {"positive": "Positive", "negative": "Negative", "unknown": "Not known"}
PHASE_LABELS: dict[str, str] = {
    "induction": "Induction",
    "consolidation": "Consolidation",
    "maintenance": "Maintenance",
    "reinduction": "Re-induction",
    "cns_prophylaxis": "CNS prophylaxis",
}
SUBTYPE_LABELS: dict[str, str] = {
    "bcr-abl1": "BCR::ABL1 (Philadelphia)",
    "ph-like": "Ph-like",
    "abl-class": "ABL-class fusion",
    "kmt2a": "KMT2A rearranged",
    "etv6-runx1": "ETV6::RUNX1",
    "high-hyperdiploid": "High hyperdiploid",
    "hypodiploid": "Hypodiploid",
    "iamp21": "iAMP21",
    "tcf3-pbx1": "TCF3::PBX1",
    "tcf3-hlf": "TCF3::HLF",
    "abl1-t315i": "ABL1 T315I mutation",
}
THERAPY_LABELS: dict[str, str] = {
    "blinatumomab": "Blinatumomab",
    "inotuzumab-ozogamicin": "Inotuzumab ozogamicin",
    "car-t": "CAR T-cell therapy",
    "allogeneic-sct": "Allogeneic (donor) stem cell transplant",
    "tki": "Tyrosine kinase inhibitor",
    "nelarabine": "Nelarabine",
    "clofarabine": "Clofarabine",
    "rituximab": "Rituximab",
    "cranial-radiation": "Cranial radiation",
}
RELAPSE_SITE_LABELS: dict[str, str] = {
    "marrow": "Bone marrow",
    "cns": "Central nervous system",
    "testicular": "Testicular",
    "combined": "Combined (marrow and elsewhere)",
    "other_extramedullary": "Other, outside the marrow",
    "unknown": "Not known",
}
# The name of each allowed value of each enum or list fact, as forms and record lines show it.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "lineage": {"B": "B-cell", "T": "T-cell", "unknown": "Not known"},
    "ph_status": _MARKER,
    "disease_status": {
        "newly_diagnosed": "Newly diagnosed",
        "in_remission": "In remission",
        "refractory": "Refractory",
        "relapsed": "Relapsed",
    },
    "completed_phases": PHASE_LABELS,
    "mrd_status": _MARKER,
    "phase_in_progress": {**PHASE_LABELS, "none": "Not started", "unknown": "Not known"},
    "mrd_timepoint": {
        "end_of_induction": "End of induction",
        "end_of_consolidation": "End of consolidation",
        "later": "Later",
        "unknown": "Not known",
    },
    "relapse_site": RELAPSE_SITE_LABELS,
    "cd19_status": _MARKER,
    "cd20_status": _MARKER,
    "cd22_status": _MARKER,
    "genetic_subtypes": SUBTYPE_LABELS,
    "prior_therapies": THERAPY_LABELS,
}
# The course record's status: the disease statuses, plus before a diagnosis and after death.
COURSE_STATUS_LABELS: dict[str, str] = {
    "not_diagnosed": "No diagnosis recorded",
    **VALUE_LABELS["disease_status"],
    "deceased": "Deceased",
}
# Inside a sentence of the text plan ("The leukemia is ..."), with the meaning spelt out.
DISEASE_STATUS_PHRASES: dict[str, str] = {
    "newly_diagnosed": "newly diagnosed",
    "in_remission": "in remission",
    "refractory": "refractory (did not respond to induction)",
    "relapsed": "relapsed (came back)",
}
CATEGORY_LABELS: dict[str, str] = {
    "chemotherapy": "Chemotherapy",
    "targeted_therapy": "Targeted therapy",
    "radiation_therapy": "Radiation therapy",
    "stem_cell_transplant": "Stem cell transplant",
    "supportive_care": "Supportive care",
    "palliative_care": "Palliative care",
    "hospice_care": "Hospice care",
    "clinical_trial": "Clinical trial",
    "testing": "Testing",
    "consultation": "Talk with a specialist",
    "cellular_therapy": "Cellular therapy",
}
STRENGTH_LABELS: dict[str, str] = {
    "standard": "standard treatment",
    "recommended": "recommended",
    "option": "an option",
    "consider": "worth asking about",
}
# The family page says the same in simpler words (it is read at grade 8 or below).
FAMILY_STRENGTH_LABELS: dict[str, str] = {
    "standard": "the usual treatment",
    "recommended": "advised",
    "option": "one choice",
    "consider": "ask about it",
}
# The patient list's flags (`allpath.store.service.patient_flags`), most pressing first.
FLAG_LABELS: dict[str, str] = {
    "urgent_diary": "Urgent diary entry",
    "critical_alert": "Critical alert",
    "died": "Died",
    "hospice": "In hospice care",
    "refractory": "Refractory",
    "relapsed": "Relapsed",
    "mrd_positive": "MRD positive",
    "pregnant": "Pregnant",
}
SEVERITY_LABELS: dict[str, str] = {"info": "Information", "warning": "Warning", "critical": "Critical"}
# Each kind of course event as its line in the record reads when it has nothing more to say.
EVENT_LABELS: dict[str, str] = {
    "diagnosed": "Diagnosed",
    "phase_started": "Phase started",
    "phase_completed": "Phase completed",
    "remission_achieved": "Complete remission",
    "induction_failed": "No remission (refractory)",
    "relapsed": "Relapse",
    "mrd_result": "MRD result",
    "transplant": "Transplant",
    "therapy_given": "Therapy given",
    "immunophenotype": "Immunophenotype",
    "genetics_result": "Genetic finding",
    "fitness_assessed": "Fitness assessed",
    "pregnancy_status": "Pregnancy status",
    "trial_enrolled": "Joined a clinical trial",
    "survival_estimate": "Expected survival",
    "hospice_started": "Hospice started",
    "treatment_completed": "Treatment completed",
    "died": "Died",
    "retracted": "Retracted",
}
# The values of an event's fields, by field name (a name means the same in every event).
EVENT_VALUE_LABELS: dict[str, dict[str, str]] = {
    "lineage": VALUE_LABELS["lineage"],
    "ph_status": VALUE_LABELS["ph_status"],
    "phase": PHASE_LABELS,
    "site": RELAPSE_SITE_LABELS,
    "result": _MARKER,
    "kind": {"allogeneic": "Allogeneic (donor)", "autologous": "Autologous (own cells)"},
    "therapy": THERAPY_LABELS,
    "cd19": _MARKER,
    "cd20": _MARKER,
    "cd22": _MARKER,
    "findings": SUBTYPE_LABELS,
}


# --- Spanish ---------------------------------------------------------------------------------
# Neutral Latin American Spanish, as families read it in US hospitals. Drug, brand, gene and
# marker names stay as they are (CD19, BCR::ABL1); "MRD" keeps its English letters beside the
# Spanish words because reports and care teams in US hospitals use them.

FACT_LABELS_ES: dict[str, str] = {
    "age_years": "Edad",
    "lineage": "Si la leucemia es de células B o de células T",
    "ph_status": "Cromosoma Filadelfia (BCR-ABL1)",
    "cns_involvement": "Leucemia en el cerebro o en el líquido de la columna",
    "disease_status": "Cómo está la enfermedad ahora",
    "completed_phases": "Fases del tratamiento ya terminadas",
    "mrd_status": "Resultado de enfermedad mínima residual (MRD)",
    "remission_count": "Número de remisiones completas hasta ahora",
    "relapse_count": "Número de recaídas hasta ahora",
    "remission_duration_months": "Cuánto duró la remisión antes de la recaída",
    "prior_regimen_count": "Número de planes de quimioterapia ya recibidos",
    "expected_survival_months": "Cuánto tiempo de vida calcula el equipo médico",
    "phase_in_progress": "La fase del tratamiento de ahora",
    "mrd_timepoint": "Cuándo se hizo la prueba de MRD",
    "relapse_site": "Dónde volvió la leucemia",
    "months_from_diagnosis_to_relapse": "Tiempo desde el diagnóstico hasta la recaída",
    "relapse_during_therapy": "Si la recaída fue durante el tratamiento",
    "months_from_therapy_end_to_relapse": "Tiempo desde el fin del tratamiento hasta la recaída",
    "cd19_status": "CD19 en las células de leucemia",
    "cd20_status": "CD20 en las células de leucemia",
    "cd22_status": "CD22 en las células de leucemia",
    "genetic_subtypes": "Hallazgos genéticos en las células de leucemia",
    "prior_therapies": "Tratamientos ya recibidos",
    "fit_for_intensive_therapy": "Si una quimioterapia fuerte sería segura",
    "pregnant": "Embarazo",
    "down_syndrome": "Síndrome de Down",
}
_MARKER_ES = {"positive": "Positivo", "negative": "Negativo", "unknown": "No se sabe"}
PHASE_LABELS_ES: dict[str, str] = {
    "induction": "Inducción",
    "consolidation": "Consolidación",
    "maintenance": "Mantenimiento",
    "reinduction": "Reinducción",
    "cns_prophylaxis": "Protección del sistema nervioso central",
}
SUBTYPE_LABELS_ES: dict[str, str] = {
    "bcr-abl1": "BCR::ABL1 (Filadelfia)",
    "ph-like": "Tipo Filadelfia (Ph-like)",
    "abl-class": "Fusión de clase ABL",
    "kmt2a": "Cambio en KMT2A",
    "etv6-runx1": "ETV6::RUNX1",
    "high-hyperdiploid": "Hiperdiploide alta",
    "hypodiploid": "Hipodiploide",
    "iamp21": "iAMP21",
    "tcf3-pbx1": "TCF3::PBX1",
    "tcf3-hlf": "TCF3::HLF",
    "abl1-t315i": "Mutación T315I de ABL1",
}
THERAPY_LABELS_ES: dict[str, str] = {
    "blinatumomab": "Blinatumomab",
    "inotuzumab-ozogamicin": "Inotuzumab ozogamicin",
    "car-t": "Terapia de células CAR T",
    "allogeneic-sct": "Trasplante de células madre de un donante (alogénico)",
    "tki": "Inhibidor de tirosina cinasa",
    "nelarabine": "Nelarabine",
    "clofarabine": "Clofarabine",
    "rituximab": "Rituximab",
    "cranial-radiation": "Radiación a la cabeza",
}
RELAPSE_SITE_LABELS_ES: dict[str, str] = {
    "marrow": "Médula ósea",
    "cns": "Sistema nervioso central",
    "testicular": "Testículos",
    "combined": "Combinada (médula y otro lugar)",
    "other_extramedullary": "Otro lugar, fuera de la médula",
    "unknown": "No se sabe",
}
VALUE_LABELS_ES: dict[str, dict[str, str]] = {
    "lineage": {"B": "Células B", "T": "Células T", "unknown": "No se sabe"},
    "ph_status": _MARKER_ES,
    "disease_status": {
        "newly_diagnosed": "Recién diagnosticada",
        "in_remission": "En remisión",
        "refractory": "Resistente al tratamiento (refractaria)",
        "relapsed": "Volvió (recaída)",
    },
    "completed_phases": PHASE_LABELS_ES,
    "mrd_status": _MARKER_ES,
    "phase_in_progress": {**PHASE_LABELS_ES, "none": "Sin empezar", "unknown": "No se sabe"},
    "mrd_timepoint": {
        "end_of_induction": "Fin de la inducción",
        "end_of_consolidation": "Fin de la consolidación",
        "later": "Más tarde",
        "unknown": "No se sabe",
    },
    "relapse_site": RELAPSE_SITE_LABELS_ES,
    "cd19_status": _MARKER_ES,
    "cd20_status": _MARKER_ES,
    "cd22_status": _MARKER_ES,
    "genetic_subtypes": SUBTYPE_LABELS_ES,
    "prior_therapies": THERAPY_LABELS_ES,
}
COURSE_STATUS_LABELS_ES: dict[str, str] = {
    "not_diagnosed": "Sin diagnóstico anotado",
    **VALUE_LABELS_ES["disease_status"],
    "deceased": "Falleció",
}
DISEASE_STATUS_PHRASES_ES: dict[str, str] = {
    "newly_diagnosed": "recién diagnosticada",
    "in_remission": "en remisión",
    "refractory": "refractaria (no respondió a la inducción)",
    "relapsed": "en recaída (volvió)",
}
CATEGORY_LABELS_ES: dict[str, str] = {
    "chemotherapy": "Quimioterapia",
    "targeted_therapy": "Terapia dirigida",
    "radiation_therapy": "Radioterapia",
    "stem_cell_transplant": "Trasplante de células madre",
    "supportive_care": "Cuidados de apoyo",
    "palliative_care": "Cuidados paliativos",
    "hospice_care": "Cuidados de hospicio",
    "clinical_trial": "Estudio clínico",
    "testing": "Pruebas",
    "consultation": "Hablar con un especialista",
    "cellular_therapy": "Terapia celular",
}
STRENGTH_LABELS_ES: dict[str, str] = {
    "standard": "tratamiento habitual",
    "recommended": "recomendado",
    "option": "una opción",
    "consider": "vale la pena preguntar",
}
FAMILY_STRENGTH_LABELS_ES: dict[str, str] = {
    "standard": "el tratamiento de costumbre",
    "recommended": "aconsejado",
    "option": "una opción",
    "consider": "pregunte por esto",
}
SEVERITY_LABELS_ES: dict[str, str] = {"info": "Información", "warning": "Aviso", "critical": "Urgente"}
EVENT_LABELS_ES: dict[str, str] = {
    "diagnosed": "Diagnóstico",
    "phase_started": "Empezó una fase",
    "phase_completed": "Terminó una fase",
    "remission_achieved": "Remisión completa",
    "induction_failed": "Sin remisión (refractaria)",
    "relapsed": "Recaída",
    "mrd_result": "Resultado de MRD",
    "transplant": "Trasplante",
    "therapy_given": "Tratamiento recibido",
    "immunophenotype": "Inmunofenotipo",
    "genetics_result": "Hallazgo genético",
    "fitness_assessed": "Evaluación del estado físico",
    "pregnancy_status": "Embarazo",
    "trial_enrolled": "Entró a un estudio clínico",
    "survival_estimate": "Tiempo de vida calculado",
    "hospice_started": "Empezó el hospicio",
    "treatment_completed": "Terminó el tratamiento",
    "died": "Falleció",
    "retracted": "Anulado",
}
EVENT_VALUE_LABELS_ES: dict[str, dict[str, str]] = {
    "lineage": VALUE_LABELS_ES["lineage"],
    "ph_status": VALUE_LABELS_ES["ph_status"],
    "phase": PHASE_LABELS_ES,
    "site": RELAPSE_SITE_LABELS_ES,
    "result": _MARKER_ES,
    "kind": {"allogeneic": "De un donante (alogénico)", "autologous": "De sus propias células (autólogo)"},
    "therapy": THERAPY_LABELS_ES,
    "cd19": _MARKER_ES,
    "cd20": _MARKER_ES,
    "cd22": _MARKER_ES,
    "findings": SUBTYPE_LABELS_ES,
}


@dataclass(frozen=True, slots=True)
class Labels:
    """Every label table, in one language. `labels("es").phase["induction"]` is "Inducción"."""

    fact: dict[str, str]
    value: dict[str, dict[str, str]]
    phase: dict[str, str]
    subtype: dict[str, str]
    therapy: dict[str, str]
    relapse_site: dict[str, str]
    course_status: dict[str, str]
    disease_status_phrase: dict[str, str]
    category: dict[str, str]
    strength: dict[str, str]
    family_strength: dict[str, str]
    severity: dict[str, str]
    event: dict[str, str]
    event_value: dict[str, dict[str, str]]


LABELS: dict[str, Labels] = {
    "en": Labels(
        FACT_LABELS, VALUE_LABELS, PHASE_LABELS, SUBTYPE_LABELS, THERAPY_LABELS, RELAPSE_SITE_LABELS,
        COURSE_STATUS_LABELS, DISEASE_STATUS_PHRASES, CATEGORY_LABELS, STRENGTH_LABELS,
        FAMILY_STRENGTH_LABELS, SEVERITY_LABELS, EVENT_LABELS, EVENT_VALUE_LABELS,
    ),
    "es": Labels(
        FACT_LABELS_ES, VALUE_LABELS_ES, PHASE_LABELS_ES, SUBTYPE_LABELS_ES, THERAPY_LABELS_ES,
        RELAPSE_SITE_LABELS_ES, COURSE_STATUS_LABELS_ES, DISEASE_STATUS_PHRASES_ES, CATEGORY_LABELS_ES,
        STRENGTH_LABELS_ES, FAMILY_STRENGTH_LABELS_ES, SEVERITY_LABELS_ES, EVENT_LABELS_ES, EVENT_VALUE_LABELS_ES,
    ),
}  # fmt: skip
LABEL_TABLES: tuple[str, ...] = tuple(f.name for f in fields(Labels))


def labels(lang: str = "en") -> Labels:
    """The label tables in `lang`; `UnsupportedLanguageError` for a language allpath does not speak."""
    found = LABELS.get(lang)
    if found is None:
        raise UnsupportedLanguageError(
            problems=[Problem("lang", f"{lang!r} is not supported; use one of {', '.join(LANGUAGES)}")]
        )
    return found


def label(table: str, value: str, lang: str = "en") -> str:
    """One value's name in one table and language: `label("phase", "maintenance", lang="es")`.

    A value missing from the table falls back to the value itself, made readable; the
    completeness tests keep every value families can see in every table and language.
    """
    if table not in LABEL_TABLES or table in ("value", "event_value"):
        raise KeyError(f"no flat label table {table!r}: use value_label or event_value_label for values by field")
    found: str | None = getattr(labels(lang), table).get(value)
    return found or value.replace("_", " ").capitalize()


def value_label(field: str, value: str, lang: str = "en") -> str:
    """The name of one value of a fact (`value_label("lineage", "B")` is "B-cell")."""
    return labels(lang).value.get(field, {}).get(value) or value.replace("_", " ").capitalize()


def event_value_label(field: str, value: str, lang: str = "en") -> str:
    """The name of one value of a course event's field (`event_value_label("phase", "induction", "es")`)."""
    return labels(lang).event_value.get(field, {}).get(value) or value.replace("_", " ").capitalize()


def fact_label(field: str, lang: str = "en") -> str:
    return labels(lang).fact.get(field) or field.replace("_", " ").capitalize()


# (one, many) for years and months, by language.
_AGE_WORDS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "en": (("year", "years"), ("month", "months")),
    "es": (("año", "años"), ("mes", "meses")),
}


def age_label(age_years: float, lang: str = "en") -> str:
    """An age as people say it: "5 years 11 months", "1 year", "7 months" (never "5.91");
    `lang="es"`: "5 años 11 meses".

    Ages are whole years plus hundredths rounded down (`allpath.dates.age_in_years`), so a
    hundredth spans up to 0.12 of a month; the month shown is the one the age has reached at the
    top of that span, which is exact on monthly anniversaries and at most about 4 days early between.
    """
    labels(lang)  # refuses a language allpath does not speak, naming it
    (year, years_word), (month, months_word) = _AGE_WORDS[lang]
    hundredths = round(age_years * 100)
    years, part = divmod(hundredths, 100)
    months = min(11, (part + 1) * 12 // 100)
    words = []
    if years:
        words.append(f"{years} {year if years == 1 else years_word}")
    if months or not years:
        words.append(f"{months} {month if months == 1 else months_word}")
    return " ".join(words)


# Words whose full stop does not end a sentence ("E. coli", "e.g. a", "vs. the").
_ABBREVIATIONS = frozenset({"e.g", "i.e", "vs", "etc", "approx", "dr", "no", "st", "fig", "cf", "al"})


def first_sentence(text: str) -> str:
    """The first sentence of a text, on one line; a full stop after an initial or a common
    abbreviation ("E. coli", "e.g.") does not end it."""
    line = " ".join(text.split())
    start = 0
    while (end := line.find(". ", start)) != -1:
        word = line[:end].rsplit(" ", 1)[-1].lstrip("(\"'")
        following = line[end + 2 : end + 3]
        if (len(word) == 1 and word.isalpha()) or word.lower() in _ABBREVIATIONS or following.islower():
            start = end + 2
            continue
        return line[: end + 1]
    return line


def cut_at_word(text: str, limit: int) -> str:
    """One line of at most `limit` characters; a longer one is cut after a whole word, with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    room = line[: limit - 1]
    # A cut that falls just after a word keeps it; otherwise the partial word goes.
    cut = room if line[limit - 1] == " " else room.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-(") + "…"


def _short_note(message: str, limit: int = 140) -> str:
    # An alert's opening clause names it; a long one is cut at a word so a list of names stays a list.
    line = first_sentence(message)
    colon = line.find(": ")
    line = line[:colon] if colon != -1 else line.rstrip(".")
    return cut_at_word(line, limit)


def _rule_label(
    rule: RecommendationRule | NotRecommendedRule | AlertRule | Recommendation | NotRecommended | Alert,
) -> str:
    # Alerts have no title, so their opening words stand for them.
    if isinstance(rule, AlertRule | Alert):
        return f"Note: {_short_note(rule.message)}"
    return rule.title


def rule_labels(plan: Plan, kb: KnowledgeBase | None = None) -> dict[str, str]:
    """A short name for each rule the plan's missing facts affect.

    A rule that fired is named as the plan shows it; one that did not is named from the
    knowledge base when it is given, and by its id otherwise.
    """
    wanted = {rule_id for m in plan.missing_facts for rule_id in m.affects}
    fired: list[Recommendation | NotRecommended | Alert] = [*plan.recommendations, *plan.not_recommended, *plan.alerts]
    names = {item.id: _rule_label(item) for item in fired if item.id in wanted}
    if kb is not None:
        for rule in kb.rules:
            if rule.id in wanted and rule.id not in names:
                names[rule.id] = _rule_label(rule)
    return names


@dataclass(frozen=True, slots=True)
class Affected:
    rule_id: str
    label: str


@dataclass(frozen=True, slots=True)
class MissingFactView:
    """A missing fact as people read it: its label and the options it would change."""

    field: str
    label: str
    affects: tuple[Affected, ...]


def missing_fact_views(plan: Plan, kb: KnowledgeBase | None = None) -> list[MissingFactView]:
    """The plan's missing facts in plan order (by field), labelled; empty when nothing is missing."""
    if not plan.missing_facts:
        return []
    names = rule_labels(plan, kb)
    return [
        MissingFactView(
            field=m.field,
            label=fact_label(m.field),
            affects=tuple(Affected(rule_id, names.get(rule_id, rule_id)) for rule_id in m.affects),
        )
        for m in plan.missing_facts
    ]
