"""CLI: `allpath recommend --fhir`, `allpath fhir plandefinition`, `allpath fhir apply`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from allpath.cli import app

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "examples" / "fhir" / "newly-diagnosed-adult-ph-positive-cns.bundle.json"
runner = CliRunner()


def test_recommend_fhir_prints_the_plan_with_the_import_alerts() -> None:
    result = runner.invoke(app, ["recommend", "--fhir", str(BUNDLE), "--as-of", "2026-11-26"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["facts"]["age_years"] == 45
    assert "tki-ph-positive" in [r["id"] for r in plan["recommendations"]]


def test_recommend_fhir_adds_missing_data_alerts(tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    bundle["entry"] = [e for e in bundle["entry"] if "69380-4" not in json.dumps(e)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(app, ["recommend", "--fhir", str(path), "--as-of", "2026-11-26"])
    assert result.exit_code == 0
    assert "fhir-missing-ph-status" in [a["id"] for a in json.loads(result.stdout)["alerts"]]


def test_recommend_fhir_on_a_bad_bundle_exits_2_naming_the_path_without_a_traceback(tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    bundle["entry"][2]["resource"]["valueQuantity"] = "lots"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(app, ["recommend", "--fhir", str(path)])
    assert result.exit_code == 2
    assert "Bundle.entry[2].resource(Observation/" in result.stderr
    assert ").valueQuantity: must be a JSON object" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_contained_resource_of_no_fhir_type_exits_2_naming_its_resource(tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    index, condition = next(
        (i, e["resource"]) for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Condition"
    )
    condition["contained"] = [{"resourceType": "NotAResource", "id": "x"}]
    path = tmp_path / "bad-contained.json"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(app, ["recommend", "--fhir", str(path)])
    assert result.exit_code == 2
    assert f"Bundle.entry[{index}].resource(Condition/" in result.stderr
    assert "whose resourceType is not a FHIR R4 resource" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_recommend_fhir_on_malformed_json_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = runner.invoke(app, ["recommend", "--fhir", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("$: malformed JSON")


def test_recommend_fhir_with_a_bad_as_of_date_exits_2() -> None:
    result = runner.invoke(app, ["recommend", "--fhir", str(BUNDLE), "--as-of", "26/11/2026"])
    assert result.exit_code == 2
    assert "--as-of: must be a date" in result.stderr


def test_recommend_with_both_a_facts_file_and_fhir_exits_2() -> None:
    result = runner.invoke(app, ["recommend", str(ROOT / "examples" / "refractory-adult.json"), "--fhir", str(BUNDLE)])
    assert result.exit_code == 2


def test_recommend_facts_file_still_works() -> None:
    result = runner.invoke(app, ["recommend", str(ROOT / "examples" / "refractory-adult.json")])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["facts"]["disease_status"] == "refractory"


def test_fhir_plandefinition_writes_a_valid_plan_definition(tmp_path: Path) -> None:
    from fhir.resources.R4B.plandefinition import PlanDefinition

    out = tmp_path / "pd.json"
    result = runner.invoke(app, ["fhir", "plandefinition", "--out", str(out)])
    assert result.exit_code == 0, result.output
    PlanDefinition.model_validate(json.loads(out.read_text()))


def test_fhir_apply_from_a_bundle_and_from_facts() -> None:
    from fhir.resources.R4B.careplan import CarePlan

    from_bundle = runner.invoke(app, ["fhir", "apply", "--fhir", str(BUNDLE), "--as-of", "2026-11-26"])
    assert from_bundle.exit_code == 0, from_bundle.output
    care = json.loads(from_bundle.stdout)
    CarePlan.model_validate(care)
    assert care["subject"] == {"reference": "Patient/nd-ph-adult"}
    from_facts = runner.invoke(
        app, ["fhir", "apply", str(ROOT / "examples" / "newly-diagnosed-adult-ph-positive-cns.json")]
    )
    assert from_facts.exit_code == 0
    actions = lambda c: [a["id"] for a in c["contained"][0]["action"]]  # noqa: E731
    assert actions(json.loads(from_facts.stdout)) == actions(care)
