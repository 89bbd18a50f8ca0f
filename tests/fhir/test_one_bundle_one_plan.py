"""One Bundle, one Plan: the CLI, `$apply` and CDS all show the plan `Engine.recommend` makes from
the import, with the import's alerts ranked in the same place (the CDS half is in
tests/cds/test_cds_fhir_end_to_end.py, which holds the cards to the same plan). `$apply` over HTTP,
`POST /fhir/PlanDefinition/{id}/$apply`, is held to it here on three Bundles that differ in what the
import reads; the import and plan code it runs is the one the CLI tests run on every example."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.fhir.conftest import APPLY_URL, apply_parameters
from typer.testing import CliRunner

from allpath.cli import app
from allpath.engine import Engine
from allpath.fhir import Importer, ImporterConfigError
from allpath.fhir.alerts import AlertCitation, alert_definitions
from allpath.fhir.export import care_plan
from allpath.knowledge import load_kb

ROOT = Path(__file__).resolve().parents[2]
# The examples, and one EHR-shaped Bundle of tests/fhir/bundles per new reading (treatment
# history, genomics with Synthea's urn:uuid references, disagreeing codes, dated relapse history).
EHR_BUNDLES = (
    "mcode-pediatric-brian-l",
    "synthea-ph-positive-adult",
    "stale-icd-beside-snomed-remission",
    "relapse-history",
)
EXAMPLES = sorted((ROOT / "examples" / "fhir").glob("*.bundle.json")) + [
    ROOT / "tests" / "fhir" / "bundles" / f"{name}.bundle.json" for name in EHR_BUNDLES
]
AS_OF = "2026-11-26"
OVER_HTTP = [
    ROOT / "examples" / "fhir" / f"{name}.bundle.json"
    for name in (
        "newly-diagnosed-adult-ph-positive-cns",
        "first-relapse-after-short-remission-teen",
        "second-relapse-adult-t-cell",
    )
] + [ROOT / "tests" / "fhir" / "bundles" / "mcode-pediatric-brian-l.bundle.json"]  # mCODE, treatment history
runner = CliRunner()


@pytest.fixture(scope="module")
def base_engine() -> Engine:
    return Engine(load_kb(["base"]))


def _plan_json(engine: Engine, path: Path) -> str:
    imported = Importer(engine.kb).from_bundle(json.loads(path.read_text()), as_of=dt.date.fromisoformat(AS_OF))
    return engine.recommend(imported.facts, extra_alerts=imported.alerts).model_dump_json(indent=2)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name.split(".")[0] for p in EXAMPLES])
def test_cli_recommend_fhir_prints_byte_for_byte_the_plan_of_the_import(base_engine: Engine, path: Path) -> None:
    result = runner.invoke(app, ["recommend", "--fhir", str(path), "--as-of", AS_OF, "--packs", "base"])
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n") == _plan_json(base_engine, path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name.split(".")[0] for p in EXAMPLES])
def test_fhir_apply_shows_the_same_alerts_and_options_in_the_same_order(base_engine: Engine, path: Path) -> None:
    plan = json.loads(_plan_json(base_engine, path))
    result = runner.invoke(app, ["fhir", "apply", "--fhir", str(path), "--as-of", AS_OF, "--packs", "base"])
    assert result.exit_code == 0, result.output
    care = json.loads(result.stdout)
    group = next(r for r in care["contained"] if r["resourceType"] == "RequestGroup")
    alert_notes = [m.group(1) for n in group.get("note", []) if (m := re.match(r"Alert \(\w+, ([^)]+)\)", n["text"]))]
    assert alert_notes == [a["id"] for a in plan["alerts"]]
    assert [a["title"] for a in group["action"]] == [r["title"] for r in plan["recommendations"]]


@pytest.mark.parametrize("path", OVER_HTTP, ids=[p.name.split(".")[0] for p in OVER_HTTP])
def test_apply_over_http_gives_the_plan_of_the_import(
    apply_client: TestClient, apply_auth: dict[str, str], base_engine: Engine, path: Path
) -> None:
    bundle = json.loads(path.read_text())
    engine = base_engine
    # The service plans for today, so the expected plan is made for today too.
    imported = Importer(engine.kb).from_bundle(bundle, as_of=dt.date.today())
    plan = engine.recommend(imported.facts, extra_alerts=imported.alerts)
    response = apply_client.post(APPLY_URL, json=apply_parameters(bundle), headers=apply_auth)
    assert response.status_code == 200, response.text
    care = response.json()
    group = next(r for r in care["contained"] if r["resourceType"] == "RequestGroup")
    assert [a["id"] for a in group["action"]] == plan.recommendation_ids()
    alert_ids = [
        n["text"].split(", ", 1)[1].split(")", 1)[0] for n in group.get("note", []) if n["text"].startswith("Alert")
    ]
    assert alert_ids == [a.id for a in plan.alerts]
    expected = care_plan(engine, imported.facts, imported=imported, subject=care["subject"])
    assert care == expected


def test_importer_refuses_a_knowledge_base_without_the_source_its_alerts_cite() -> None:
    kb = load_kb(["base"])
    stripped = dataclasses.replace(kb, sources={k: v for k, v in kb.sources.items() if k != "cancernet-all-2017"})
    with pytest.raises(ImporterConfigError, match="cancernet-all-2017"):
        Importer(stripped)


def test_importer_refuses_an_alert_citing_a_section_the_knowledge_base_lacks() -> None:
    kb = load_kb(["base"])
    alerts = dict(alert_definitions())
    bad = alerts["fhir-missing-mrd-status"]
    alerts[bad.id] = bad.model_copy(
        update={"citations": (AlertCitation(source_id="cancernet-all-2017", section="No such section"),)}
    )
    with pytest.raises(ImporterConfigError, match=r"'fhir-missing-mrd-status' cites section 'No such section'"):
        Importer(kb, alerts=alerts)


def test_importer_refuses_to_raise_an_alert_that_is_not_defined() -> None:
    alerts = {k: v for k, v in alert_definitions().items() if k != "fhir-conflicting-disease-status"}
    with pytest.raises(ImporterConfigError, match="'fhir-conflicting-disease-status' is raised by the importer"):
        Importer(load_kb(["base"]), alerts=alerts)


def test_importer_reads_medications_by_the_drug_codes_of_the_knowledge_base_it_was_given() -> None:
    kb = load_kb(["base"])
    agent = next(a for a in kb.agents.values() if a.codes)
    coding = {"system": agent.codes[0].system, "code": agent.codes[0].code}
    order = {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [coding]}}
    assert Importer(kb).wants(order)
    assert not Importer(dataclasses.replace(kb, agents={})).wants(order)
