"""FHIR R4 out: the knowledge base as a PlanDefinition, and `$apply` as a CarePlan with a RequestGroup.

The PlanDefinition has one action per rule. Each action's applicability condition is a
FHIRPath expression (`allpath.rules.fhirpath`) over the facts carried in a Parameters
resource, so any FHIRPath engine can decide which actions apply; a test checks, on generated
facts, that fhirpathpy and the allpath engine agree on every rule and variant. Variants are
nested actions whose conditions exclude the earlier variants, so at most one applies, and it
is the one the engine picks.

Everything returned is plain JSON (dicts); tests validate it with the fhir.resources R4B models.
"""

from __future__ import annotations

import re
from typing import Any

from allpath.engine import Engine
from allpath.explain.labels import missing_fact_views
from allpath.facts import PatientFacts
from allpath.fhir.codes import NCIT, RXNORM
from allpath.fhir.importer import ImportResult
from allpath.fhir.library import LIBRARY_ID, facts_library
from allpath.knowledge import KnowledgeBase
from allpath.knowledge.schema import AlertRule, AllOf, NotOf, NotRecommendedRule, RecommendationRule
from allpath.plan import Citation, Plan
from allpath.rules.fhirpath import facts_to_parameters, to_fhirpath, to_fhirpath_variables
from allpath.rules.tree import describe

BASE_URL = "https://allpath.example.org/fhir"
PLAN_DEFINITION_URL = f"{BASE_URL}/PlanDefinition/allpath-all-treatment-options"
LIBRARY_URL = f"{BASE_URL}/Library/allpath-facts-from-record"
ALTERNATIVE_EXPRESSION = "http://hl7.org/fhir/StructureDefinition/cqf-alternativeExpression"
RULE_KIND_SYSTEM = f"{BASE_URL}/CodeSystem/rule-kind"
CATEGORY_SYSTEM = f"{BASE_URL}/CodeSystem/recommendation-category"
STRENGTH_SYSTEM = f"{BASE_URL}/CodeSystem/recommendation-strength"
SEVERITY_SYSTEM = f"{BASE_URL}/CodeSystem/alert-severity"
PLAN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
STRENGTH_EXTENSION = f"{BASE_URL}/StructureDefinition/recommendation-strength"
# The CPG-on-FHIR IG (HL7, STU2 2.0.0) profiles of what `$apply` returns; canonical URLs as the IG
# publishes them (checked on hl7.org/fhir/uv/cpg, see docs/cpg.md).
CPG = "http://hl7.org/fhir/uv/cpg/StructureDefinition"
CPG_CAREPLAN = f"{CPG}/cpg-careplan"
CPG_STRATEGY = f"{CPG}/cpg-strategy"
CPG_MEDICATION_REQUEST = f"{CPG}/cpg-medicationrequest"
CPG_RATIONALE = f"{CPG}/cpg-rationale"
FHIRPATH = "text/fhirpath"


def _fhir_id(text: str) -> str:
    """A FHIR id (letters, digits, '-', '.', at most 64 characters) from any text."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64]


def _citation_artifacts(kb: KnowledgeBase, citations: list[Any]) -> list[dict[str, Any]]:
    artifacts = []
    for c in citations:
        source = kb.sources[c.source_id]
        artifact: dict[str, Any] = {
            "type": "citation",
            "label": c.source_id,
            "display": f"{source.title}, section: {c.section}",
            "citation": f"{source.publisher}. {source.title} ({source.approved}). Section: {c.section}.",
        }
        if source.url:
            artifact["url"] = source.url
        artifacts.append(artifact)
    return artifacts


def _condition(node: Any) -> dict[str, Any]:
    """The condition over the facts Parameters, and the same condition over the Library's `%fact` variables."""
    on_record = {
        "language": FHIRPATH,
        "expression": to_fhirpath_variables(node),
        "reference": f"#{LIBRARY_ID}",
        "description": "The same condition over the facts the Library derives from the patient's record.",
    }
    return {
        "kind": "applicability",
        "expression": {
            "extension": [{"url": ALTERNATIVE_EXPRESSION, "valueExpression": on_record}],
            "language": FHIRPATH,
            "expression": to_fhirpath(node),
            "description": describe(node),
        },
    }


def activity_definition(kb: KnowledgeBase, agent_id: str) -> dict[str, Any]:
    """An agent as an ActivityDefinition (kind MedicationRequest) with its confirmed RxNorm/NCIt codings."""
    agent = kb.agents[agent_id]
    codings = [
        {"system": c.system, "code": c.code, "display": c.display or agent.name}
        for c in agent.codes
        if c.system in (RXNORM, NCIT)
    ]
    definition: dict[str, Any] = {
        "resourceType": "ActivityDefinition",
        "id": f"agent-{_fhir_id(agent.id)}",
        "url": f"{BASE_URL}/ActivityDefinition/agent-{_fhir_id(agent.id)}",
        "name": re.sub(r"[^A-Za-z0-9]", "", agent.name.title()),
        "title": agent.name,
        "status": "active",
        "description": f"{agent.summary} ({agent.drug_class})",
        "kind": "MedicationRequest",
        "relatedArtifact": _citation_artifacts(kb, agent.citations),
    }
    if codings:
        definition["productCodeableConcept"] = {"coding": codings, "text": agent.name}
    else:
        definition["productCodeableConcept"] = {"text": agent.name}
    return definition


def _rule_codes(rule: Any) -> list[dict[str, Any]]:
    codes = [{"coding": [{"system": RULE_KIND_SYSTEM, "code": rule.kind}]}]
    if isinstance(rule, RecommendationRule):
        codes.append({"coding": [{"system": CATEGORY_SYSTEM, "code": rule.category}]})
        codes.append({"coding": [{"system": STRENGTH_SYSTEM, "code": rule.strength}]})
    if isinstance(rule, AlertRule):
        codes.append({"coding": [{"system": SEVERITY_SYSTEM, "code": rule.severity}]})
    return codes


def _rule_text(rule: Any) -> tuple[str, str]:
    if isinstance(rule, RecommendationRule):
        return rule.title, rule.summary.strip()
    if isinstance(rule, NotRecommendedRule):
        return f"Not recommended: {rule.title}", rule.reason.strip()
    return f"Alert ({rule.severity})", rule.message.strip()


def plan_definition(kb: KnowledgeBase) -> dict[str, Any]:
    """The whole knowledge base as one PlanDefinition, with the agents as contained ActivityDefinitions."""
    used_agents: list[str] = list(kb.agents)
    actions = []
    for rule in kb.rules:
        title, description = _rule_text(rule)
        condition = kb.conditions[rule.id]
        action: dict[str, Any] = {
            "id": _fhir_id(rule.id),
            "title": title,
            "description": description,
            "textEquivalent": f"Applies when {describe(condition)}.",
            "code": _rule_codes(rule),
            "documentation": _citation_artifacts(kb, rule.citations),
            "condition": [_condition(condition)],
        }
        if rule.superseded_by:
            action["documentation"].append(
                {"type": "successor", "label": "superseded_by", "display": f"Superseded by {rule.superseded_by}"}
            )
        if isinstance(rule, RecommendationRule):
            sub: list[dict[str, Any]] = []
            for use in rule.agents:
                agent_id = use if isinstance(use, str) else use.agent
                sub.append(
                    {
                        "id": _fhir_id(f"{rule.id}.{agent_id}"),
                        "title": kb.agents[agent_id].name,
                        "definitionCanonical": f"#agent-{_fhir_id(agent_id)}",
                    }
                )
            variants = kb.variant_conditions[rule.id]
            for k, (variant, when) in enumerate(zip(rule.variants, variants, strict=True), start=1):
                # Variants apply in order: the k-th applies only when none before it does.
                earlier = [NotOf(**{"not": v}) for v in variants[: k - 1]]
                exclusive = AllOf(all=[when, *earlier]) if earlier else when
                changes = {
                    key: (val.strip() if isinstance(val, str) else val)
                    for key, val in variant.model_dump(exclude={"when"}).items()
                    if val is not None
                }
                sub.append(
                    {
                        "id": _fhir_id(f"{rule.id}.variant-{k}"),
                        "title": f"{rule.title} (variant {k})",
                        "description": "; ".join(f"{key}: {val}" for key, val in changes.items()),
                        "textEquivalent": f"Within this action, applies when {describe(exclusive)}.",
                        "code": [{"coding": [{"system": RULE_KIND_SYSTEM, "code": "variant"}]}],
                        "condition": [_condition(exclusive)],
                    }
                )
            if sub:
                action["action"] = sub
        actions.append(action)

    pack_titles = "; ".join(p.title for p in kb.packs)
    sources = [kb.sources[s] for s in kb.sources]
    return {
        "resourceType": "PlanDefinition",
        "id": "allpath-all-treatment-options",
        "url": PLAN_DEFINITION_URL,
        "version": kb.version,
        "name": "AllpathALLTreatmentOptions",
        "title": "allpath: treatment options for acute lymphoblastic leukemia",
        "type": {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": "eca-rule"}]},
        "status": "active",
        "description": (
            f"Knowledge {kb.version} ({pack_titles}). Each action applies when its FHIRPath condition, "
            "evaluated with the patient's facts Parameters resource as its focus, is true. Without those "
            "facts, evaluate the contained Library on the patient's record (a Bundle: Patient plus data) "
            "and each condition's alternative expression (cqf-alternativeExpression) over its variables. "
            + kb.disclaimer
        ),
        "library": [f"#{LIBRARY_ID}"],
        "relatedArtifact": [
            {
                "type": "citation",
                "label": s.id,
                "display": s.title,
                "citation": f"{s.publisher}. {s.title} ({s.approved}).",
                **({"url": s.url} if s.url else {}),
            }
            for s in sources
        ],
        "contained": [
            facts_library(kb.version, LIBRARY_URL),
            *(activity_definition(kb, a) for a in used_agents),
        ],
        "action": actions,
    }


def care_plan(
    engine: Engine,
    facts: PatientFacts,
    *,
    imported: ImportResult | None = None,
    subject: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`$apply`: the plan for these facts as a CarePlan holding a RequestGroup (intent `option`).

    The RequestGroup's actions are the recommendations, with their citations and agents
    (RxNorm-coded where the KB has a confirmed code); each drug of an option points to a contained
    MedicationRequest with intent `proposal` (none for a withdrawn or superseded drug). The CarePlan,
    RequestGroup and MedicationRequests name the CPG-on-FHIR profiles in `meta.profile`. Alerts and
    options not recommended are notes. The facts travel along as a contained Parameters resource.
    Unknown facts that could change the plan are one more CarePlan note.
    """
    kb = engine.kb
    plan = engine.recommend(facts, extra_alerts=imported.alerts if imported is not None else ())
    subject = subject or {"display": "the patient whose facts were given"}
    canonical = f"{PLAN_DEFINITION_URL}|{kb.version}"
    actions = []
    orders: list[dict[str, Any]] = []
    for rec in plan.recommendations:
        action: dict[str, Any] = {
            # The CPG strategy profile allows one code per action: the category; the strength rides in an extension.
            "extension": [
                {
                    "url": STRENGTH_EXTENSION,
                    "valueCodeableConcept": {"coding": [{"system": STRENGTH_SYSTEM, "code": rec.strength}]},
                }
            ],
            "id": _fhir_id(rec.id),
            "title": rec.title,
            "description": rec.summary,
            "textEquivalent": rec.rationale,
            "code": [{"coding": [{"system": CATEGORY_SYSTEM, "code": rec.category}]}],
            "documentation": _citation_artifacts(kb, rec.citations),
        }
        superseded = getattr(rec, "superseded_by", None)
        if superseded:
            action["documentation"].append(
                {"type": "successor", "label": "superseded_by", "display": f"Superseded by {superseded}"}
            )
        if rec.expected_outcome:
            action["description"] += f" Expected: {rec.expected_outcome}"
        sub = []
        for agent in rec.agents:
            codings = [
                {"system": c.system, "code": c.code, "display": c.display or agent.name}
                for c in kb.agents[agent.id].codes
                if c.system == RXNORM
            ]
            concept: dict[str, Any] = {"coding": codings, "text": agent.name} if codings else {"text": agent.name}
            entry: dict[str, Any] = {
                "title": agent.name,
                "description": f"{agent.drug_class}; {', '.join(agent.routes)}",
                "code": [concept],
            }
            if superseded or agent.superseded_by:
                # A withdrawn or superseded drug is shown with its note, never proposed as an order.
                entry["description"] += f" (superseded: {agent.superseded_by or superseded}; not proposed)"
            else:
                order = _medication_request(f"mr-{len(orders) + 1}", concept, subject, canonical, rec.rationale)
                orders.append(order)
                entry["resource"] = {"reference": f"#{order['id']}"}
            sub.append(entry)
        if sub:
            action["action"] = sub
            action["selectionBehavior"] = "any"
        actions.append(action)

    notes = [
        {"text": f"Alert ({a.severity}, {a.id}): {a.message} [{_cite(a.citations)}]{_superseded(a)}"}
        for a in plan.alerts
    ]
    notes += [
        {"text": f"Not recommended ({n.id}): {n.title}. {n.reason} [{_cite(n.citations)}]{_superseded(n)}"}
        for n in plan.not_recommended
    ]
    request_group: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "id": "options",
        "meta": {"profile": [CPG_STRATEGY]},
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "option",
        "subject": subject,
        "action": actions,
    }
    if notes:
        request_group["note"] = notes
    parameters = {**facts_to_parameters(plan.facts), "id": "facts"}
    care: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": "allpath-options",
        "meta": {"profile": [CPG_CAREPLAN]},
        "contained": [request_group, parameters, *orders],
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "option",
        "category": [{"text": "Treatment options for acute lymphoblastic leukemia"}],
        "title": "Treatment options (allpath)",
        "description": plan.disclaimer,
        "subject": subject,
        "supportingInfo": [{"reference": "#facts", "display": "the facts the options were chosen from"}],
        "activity": [{"reference": {"reference": "#options", "display": "treatment options"}}],
        "note": [{"text": f"Knowledge {plan.knowledge.version}. {plan.disclaimer}"}],
    }
    if imported is not None and imported.notes:
        care["note"].append({"text": "Import notes: " + " | ".join(imported.notes)})
    sharpen = missing_facts_note(plan, kb)
    if sharpen is not None:
        care["note"].append(sharpen)
    return care


def _medication_request(
    order_id: str, medication: dict[str, Any], subject: dict[str, Any], canonical: str, rationale: str
) -> dict[str, Any]:
    """A proposed (never ordered) MedicationRequest for one drug of one option, as the CPG profile has it."""
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "meta": {"profile": [CPG_MEDICATION_REQUEST]},
        "extension": [{"url": CPG_RATIONALE, "valueMarkdown": rationale}],
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": medication,
        "subject": subject,
        "instantiatesCanonical": [canonical],
    }


def missing_facts_note(plan: Plan, kb: KnowledgeBase) -> dict[str, Any] | None:
    """One Annotation (markdown) naming each unknown fact that could change the plan, and what it would change."""
    views = missing_fact_views(plan, kb)
    if not views:
        return None
    lines = [
        "What would sharpen this plan: these facts are not known, "
        "and finding them out could change which options apply."
    ]
    for view in views:
        affected = "; ".join(f"{a.label} ({a.rule_id})" for a in view.affects)
        lines.append(f"- {view.label} (`{view.field}`) would change: {affected}")
    return {"text": "\n".join(lines)}


def patient_reference(bundle: Any) -> dict[str, Any] | None:
    """A Reference to the Bundle's Patient, for the CarePlan's subject (None when it has no id)."""
    for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient" and resource.get("id"):
            return {"reference": f"Patient/{resource['id']}"}
    return None


def _superseded(item: Any) -> str:
    # Plan items gain `superseded_by` with the knowledge-pack versioning work; older ones lack it.
    successor = getattr(item, "superseded_by", None)
    return f" (superseded by {successor})" if successor else ""


def _cite(citations: list[Citation]) -> str:
    return "; ".join(f"{c.source_id}: {c.section}" for c in citations)
