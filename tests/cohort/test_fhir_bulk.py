"""`allpath cohort evaluate EXPORT`: a FHIR Bulk Data export (NDJSON) evaluated through the FHIR mapping."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from allpath import bulk
from allpath.cli import app
from allpath.facts import FACT_KINDS, FIELD_NAMES, PatientFacts

from .helpers import read_results

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "examples" / "fhir-bulk"
BUNDLES = ROOT / "examples" / "fhir"
AS_OF = "2026-11-26"
runner = CliRunner()


def _evaluate(source: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["cohort", "evaluate", str(source), "--out", str(out), "--as-of", AS_OF, *extra])


def _rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def _copy_export(tmp_path: Path) -> Path:
    export = tmp_path / "export"
    shutil.copytree(EXPORT, export)
    return export


def _append(path: Path, *lines: str) -> int:
    """Append lines to an NDJSON file; returns the line number of the first one."""
    first = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    return first


def _example_bundles() -> list[Path]:
    # The large noisy bundle reuses the id of another example's patient, so the export leaves it out.
    return sorted(p for p in BUNDLES.glob("*.bundle.json") if not p.name.startswith("large-noisy"))


def test_the_example_export_holds_exactly_the_resources_of_the_example_bundles() -> None:
    exported = sorted(
        json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True)
        for f in EXPORT.glob("*.ndjson")
        for r in map(json.loads, f.read_text(encoding="utf-8").splitlines())
    )
    bundled = sorted(
        json.dumps({k: v for k, v in e["resource"].items() if k != "id"}, sort_keys=True)
        for f in _example_bundles()
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]
    )
    assert exported == bundled


def test_the_example_export_gives_the_plans_of_recommend_fhir_bundle_by_bundle(tmp_path: Path) -> None:
    out = tmp_path / "results.parquet"
    done = _evaluate(EXPORT, out)
    assert done.exit_code == 0, done.output
    assert "74 lines, 10 patients (ages at 2026-11-26)" in done.stdout
    assert "  10 patients mapped ->" in done.stdout
    results = read_results(out)
    facts = {r["patient_id"]: r for r in _rows(tmp_path / "results.facts.parquet")}
    import_alerts: dict[str, list[str]] = {}
    for row in _rows(tmp_path / "results.fhir-alerts.parquet"):
        import_alerts.setdefault(row["patient_id"], []).append(row["alert"])
    assert len(results) == len(_example_bundles())
    for bundle in _example_bundles():
        single = runner.invoke(app, ["recommend", "--fhir", str(bundle), "--as-of", AS_OF])
        assert single.exit_code == 0, single.output
        plan = json.loads(single.stdout)
        patient_id = next(
            e["resource"]["id"]
            for e in json.loads(bundle.read_text())["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        row = results[patient_id]
        assert row["recommendations"] == [r["id"] for r in plan["recommendations"]], bundle.name
        assert row["not_recommended"] == [n["id"] for n in plan["not_recommended"]], bundle.name
        merged = sorted([*row["alerts"], *import_alerts.get(patient_id, [])])
        assert merged == sorted(a["id"] for a in plan["alerts"]), bundle.name
        assert {k: v for k, v in facts[patient_id].items() if k != "patient_id"} == plan["facts"], bundle.name


def test_the_facts_table_has_every_field_with_lists_as_lists_and_v2_fields_at_their_defaults(tmp_path: Path) -> None:
    import pyarrow as pa

    done = _evaluate(EXPORT, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    table = pq.read_table(tmp_path / "results.facts.parquet")
    assert table.column_names == ["patient_id", *FIELD_NAMES]
    for name, kind in FACT_KINDS.items():
        if kind.type == "list":
            assert table.schema.field(name).type == pa.list_(pa.string()), name
    # The FHIR mapping does not read the v2 fields yet: each keeps its PatientFacts default.
    defaults = {n: PatientFacts.model_fields[n].default for n in FIELD_NAMES[FIELD_NAMES.index("phase_in_progress") :]}
    for row in table.to_pylist():
        assert {n: tuple(row[n]) if isinstance(row[n], list) else row[n] for n in defaults} == defaults


def test_patients_are_gathered_the_same_when_their_lines_cross_batch_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = bulk.stage_export(EXPORT, tmp_path / "a" / "r.parquet", as_of=bulk.dt.date(2026, 11, 26))
    monkeypatch.setattr(bulk, "_BATCH_LINES", 3)
    monkeypatch.setattr(bulk, "_BATCH_PATIENTS", 2)
    pieces = bulk.stage_export(EXPORT, tmp_path / "b" / "r.parquet", as_of=bulk.dt.date(2026, 11, 26))
    assert (pieces.patients, pieces.mapped) == (whole.patients, whole.mapped) == (10, 10)
    assert _rows(pieces.facts) == _rows(whole.facts)
    assert _rows(pieces.alerts) == _rows(whole.alerts)


def test_bad_lines_are_reported_with_file_and_line_set_aside_and_the_run_goes_on(tmp_path: Path) -> None:
    export = _copy_export(tmp_path)
    observations = export / "Observation.001.ndjson"
    bad_value = json.dumps(
        {
            "resourceType": "Observation",
            "id": "broken",
            "status": "final",
            "code": {"text": "anything"},
            "subject": {"reference": "Patient/refractory"},
            "valueQuantity": "lots",
        }
    )
    cut_short = '{"resourceType": "Observation", "subject": {"reference": "Patient/rem-mrd"}, "status": "fin'
    first = _append(observations, "{not json", "[1, 2]", '{"id": "no-type"}', "", bad_value, cut_short)
    out = tmp_path / "results.parquet"
    done = _evaluate(export, out)
    assert done.exit_code == 0, done.output
    assert f"Observation.001.ndjson:{first}: not JSON: Expecting property name enclosed in double quotes" in done.stderr
    assert f"Observation.001.ndjson:{first + 1}: not a FHIR resource: expected a JSON object" in done.stderr
    assert f"Observation.001.ndjson:{first + 2}: resourceType: is required" in done.stderr
    assert f"Observation.001.ndjson:{first + 4}: Observation/broken.valueQuantity: must be a JSON object" in done.stderr
    assert "Traceback" not in done.output
    rejects = _rows(tmp_path / "results.ndjson-rejects.parquet")
    assert [(r["file"], r["line"], r["patient_id"]) for r in rejects] == [
        ("Observation.001.ndjson", first, None),
        ("Observation.001.ndjson", first + 1, None),
        ("Observation.001.ndjson", first + 2, None),
        ("Observation.001.ndjson", first + 4, "refractory"),  # the blank line between is no resource
        ("Observation.001.ndjson", first + 5, "rem-mrd"),  # not JSON, but its text names one patient
    ]
    assert rejects[0]["original_line"] == "{not json"
    assert rejects[3]["original_line"] == bad_value
    # The patient of the invalid Observation is not evaluated on the rest of the record.
    assert (
        f"patient refractory: Observation.001.ndjson:{first + 4}: this line was set aside "
        "(see the NDJSON rejects): the record is incomplete" in done.stderr
    )
    patient_rejects = _rows(tmp_path / "results.patient-rejects.parquet")
    assert [r["patient_id"] for r in patient_rejects] == ["refractory", "rem-mrd"]
    assert "Patient.ndjson:" in " ".join(patient_rejects[0]["resources"])
    assert not {"refractory", "rem-mrd"} & read_results(out).keys()
    assert len(read_results(out)) == 8


def test_a_resource_for_a_patient_not_in_the_export_is_reported_and_set_aside(tmp_path: Path) -> None:
    export = _copy_export(tmp_path)
    stray = {
        "resourceType": "Condition",
        "id": "stray",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C91.00"}]},
        "subject": {"reference": "Patient/ghost"},
    }
    line = _append(export / "Condition.ndjson", json.dumps(stray))
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    assert f"Condition.ndjson:{line}: Patient/ghost: no Patient resource with this id in the export" in done.stderr
    rejects = _rows(tmp_path / "results.ndjson-rejects.parquet")
    assert [(r["file"], r["line"], r["patient_id"]) for r in rejects] == [("Condition.ndjson", line, "ghost")]
    assert json.loads(rejects[0]["original_line"]) == stray
    assert len(read_results(tmp_path / "results.parquet")) == 10


def test_a_resource_with_no_patient_reference_is_set_aside_and_other_types_are_counted_not_read(
    tmp_path: Path,
) -> None:
    export = _copy_export(tmp_path)
    orphan = {"resourceType": "Observation", "id": "orphan", "status": "final", "code": {"text": "x"}}
    of_group = {**orphan, "id": "of-group", "subject": {"reference": "Group/g1"}}
    line = _append(export / "Observation.000.ndjson", json.dumps(orphan), json.dumps(of_group))
    (export / "Practitioner.ndjson").write_text('{"resourceType": "Practitioner", "id": "dr"}\n', encoding="utf-8")
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    assert f"Observation.000.ndjson:{line}: Observation/orphan: has no subject or patient reference" in done.stderr
    assert (
        f"Observation.000.ndjson:{line + 1}: Observation/of-group.subject: Group/g1 is not a reference to a Patient"
        in done.stderr
    )
    assert "not read (no fact comes from them): Practitioner x1" in done.stdout


def test_a_patient_whose_resources_do_not_map_is_reported_by_patient_field_and_problem(tmp_path: Path) -> None:
    export = _copy_export(tmp_path)
    patients = (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    number, original = next((i, p) for i, p in enumerate(patients, start=1) if '"id":"rem-t"' in p)
    patients[number - 1] = json.dumps({k: v for k, v in json.loads(original).items() if k != "birthDate"})
    (export / "Patient.ndjson").write_text("\n".join(patients) + "\n", encoding="utf-8")
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    assert (
        f"patient rem-t: Patient.ndjson:{number}(Patient/rem-t).birthDate: "
        "is required: age_years is worked out from it" in done.stderr
    )
    rejected = _rows(tmp_path / "results.patient-rejects.parquet")
    assert [r["patient_id"] for r in rejected] == ["rem-t"]
    assert json.loads(rejected[0]["problems"]) == [
        {
            "field": f"Patient.ndjson:{number}(Patient/rem-t).birthDate",
            "problem": "is required: age_years is worked out from it",
        }
    ]
    assert "rem-t" not in read_results(tmp_path / "results.parquet")


def test_a_second_patient_resource_with_the_same_id_sets_the_patient_aside(tmp_path: Path) -> None:
    export = _copy_export(tmp_path)
    first_line = (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()[0]
    patient_id = json.loads(first_line)["id"]
    line = _append(export / "Patient.ndjson", first_line)
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    assert f"Patient.ndjson:{line}: a second Patient resource with this id (first at Patient.ndjson:1)" in done.stderr
    assert patient_id not in read_results(tmp_path / "results.parquet")


def test_gzipped_files_and_a_single_ndjson_file_are_read(tmp_path: Path) -> None:
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    for path in EXPORT.glob("*.ndjson"):
        (zipped / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    single = tmp_path / "everything.ndjson"
    single.write_bytes(b"".join(p.read_bytes() for p in sorted(EXPORT.glob("*.ndjson"))))
    expected = read_results(_done(_evaluate(EXPORT, tmp_path / "plain.parquet"), tmp_path / "plain.parquet"))
    assert read_results(_done(_evaluate(zipped, tmp_path / "z.parquet"), tmp_path / "z.parquet")) == expected
    assert read_results(_done(_evaluate(single, tmp_path / "s.parquet"), tmp_path / "s.parquet")) == expected


def _done(result: Any, out: Path) -> Path:
    assert result.exit_code == 0, result.output
    return out


def test_a_truncated_gzip_file_is_reported_and_the_other_files_are_still_read(tmp_path: Path) -> None:
    export = _copy_export(tmp_path)
    observations = export / "Observation.001.ndjson"
    (export / "Observation.001.ndjson.gz").write_bytes(gzip.compress(observations.read_bytes())[:200])
    observations.unlink()
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 0, done.output
    assert "Observation.001.ndjson.gz:1: cannot read the file from here on" in done.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "SOURCE: no such file or folder"),
        (lambda tmp: tmp, "SOURCE: no .ndjson, .ndjson.gz or .parquet files in"),
    ],
    ids=["missing-path", "empty-folder"],
)
def test_an_unusable_input_exits_2_with_a_message_and_no_traceback(tmp_path: Path, make: Any, message: str) -> None:
    source = make(tmp_path / "in")
    (tmp_path / "in").mkdir()
    done = _evaluate(source, tmp_path / "out" / "results.parquet")
    assert done.exit_code == 2
    assert message in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_an_export_without_any_patient_exits_2(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(EXPORT / "Condition.ndjson", export)
    done = _evaluate(export, tmp_path / "results.parquet")
    assert done.exit_code == 2
    assert "SOURCE: no Patient resource in" in done.stderr
    assert "no Patient resource with this id in the export" in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_as_of_sets_the_ages_and_is_refused_for_a_facts_table(tmp_path: Path) -> None:
    later = runner.invoke(
        app, ["cohort", "evaluate", str(EXPORT), "--out", str(tmp_path / "r.parquet"), "--as-of", "2027-11-26"]
    )
    assert later.exit_code == 0, later.output
    ages = {r["patient_id"]: r["age_years"] for r in _rows(tmp_path / "r.facts.parquet")}
    assert ages["nd-ph-adult"] == 46
    table = tmp_path / "facts.csv"
    table.write_text("patient_id,age_years,disease_status\nA,3,newly_diagnosed\n", encoding="utf-8")
    refused = runner.invoke(
        app, ["cohort", "evaluate", str(table), "--out", str(tmp_path / "t.parquet"), "--as-of", AS_OF]
    )
    assert refused.exit_code == 2
    assert "--as-of: only applies to a FHIR NDJSON export" in refused.stderr


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.xdist_group("cohort-spark")
def test_an_export_evaluated_on_spark_gives_the_duckdb_results(tmp_path: Path, spark: Any) -> None:
    on_duckdb = _evaluate(EXPORT, tmp_path / "d" / "results.parquet")
    on_spark = _evaluate(EXPORT, tmp_path / "s" / "results", "--engine", "spark")
    assert on_duckdb.exit_code == on_spark.exit_code == 0, on_spark.output
    assert read_results(tmp_path / "s" / "results") == read_results(tmp_path / "d" / "results.parquet")
    assert _rows(tmp_path / "s" / "results.facts.parquet") == _rows(tmp_path / "d" / "results.facts.parquet")


def test_worker_processes_give_exactly_the_single_process_output(tmp_path: Path, monkeypatch: Any) -> None:
    export = _copy_export(tmp_path)
    _append(
        export / "Observation.000.ndjson",
        "{not json",
        json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": "lots"}),
        json.dumps({"resourceType": "Encounter", "id": "e1", "status": "finished"}),
    )
    patients = (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    patients = [
        json.dumps({k: v for k, v in json.loads(p).items() if k != "birthDate"}) if '"id":"rem-t"' in p else p
        for p in patients
    ]
    (export / "Patient.ndjson").write_text("\n".join(patients) + "\n", encoding="utf-8")
    # Small chunks, so the lines and the patients are spread over many worker calls.
    monkeypatch.setattr(bulk, "_CHUNK_LINES", 7)
    monkeypatch.setattr(bulk, "_CHUNK_PATIENTS", 3)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)
    pools: list[int] = []

    class CountedPool(bulk.ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any):
            pools.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(bulk, "ProcessPoolExecutor", CountedPool)
    as_of = __import__("datetime").date(2026, 11, 26)

    single = bulk.stage_export(export, tmp_path / "single" / "r.parquet", as_of=as_of, workers=1)
    pooled = bulk.stage_export(export, tmp_path / "pooled" / "r.parquet", as_of=as_of, workers=2)

    assert pools == [2]  # the single-process run started none
    assert (pooled.mapped, pooled.lines_rejected, pooled.patients_rejected) == (9, 2, 1)
    assert pooled.line_problems == single.line_problems and pooled.patient_problems == single.patient_problems
    assert pooled.not_read == single.not_read == {"Encounter": 1}
    for name in ("r.facts.parquet", "r.fhir-alerts.parquet", "r.ndjson-rejects.parquet", "r.patient-rejects.parquet"):
        assert pq.read_table(tmp_path / "pooled" / name).equals(pq.read_table(tmp_path / "single" / name)), name
