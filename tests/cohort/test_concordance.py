"""Concordance measures on a small cohort checked by hand, the CSV files, and the HTML report in chromium."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allpath.cohort import concordance, report
from allpath.cohort.evaluate import evaluate_duckdb
from allpath.cohort.synth import facts_table
from allpath.engine import default_engine

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Six patients; why each lands where it does is written beside it.
FACTS = [
    # A: Ph+, consolidation next, so chemotherapy is active and a TKI is recommended; got imatinib.
    {"patient_id": "A", "age_years": 40.0, "ph_status": "positive", "lineage": "B", "disease_status": "in_remission",
     "completed_phases": ["induction"], "remission_count": 1, "prior_regimen_count": 1},
    # B: Ph+, newly diagnosed (induction), TKI recommended; got only vincristine.
    {"patient_id": "B", "age_years": 50.0, "ph_status": "positive", "disease_status": "newly_diagnosed",
     "completed_phases": []},
    # C: 8 years old, second relapse after 3 regimens: donor transplant advised, clofarabine within indication.
    {"patient_id": "C", "age_years": 8.0, "ph_status": "negative", "disease_status": "relapsed",
     "completed_phases": [], "remission_count": 2, "relapse_count": 2, "prior_regimen_count": 3},
    # D: 30 years old, second relapse: donor transplant advised but got an autologous one; clofarabine (as
    # its brand name) outside ages 1 to 21.
    {"patient_id": "D", "age_years": 30.0, "ph_status": "negative", "disease_status": "relapsed",
     "completed_phases": [], "remission_count": 2, "relapse_count": 2, "prior_regimen_count": 2},
    # E: an infant, newly diagnosed; palliative care recorded with odd capitals.
    {"patient_id": "E", "age_years": 0.5, "disease_status": "newly_diagnosed", "completed_phases": []},
    # F: Ph+ but all phases done, so no chemotherapy now and no TKI expected; clofarabine while in remission.
    {"patient_id": "F", "age_years": 15.0, "ph_status": "positive", "disease_status": "in_remission",
     "completed_phases": ["induction", "consolidation", "maintenance"], "remission_count": 1,
     "prior_regimen_count": 1},
]  # fmt: skip
TREATMENTS = [
    ("A", "agent", "imatinib"),
    ("B", "agent", "vincristine"),
    ("C", "procedure", "allogeneic-sct"),
    ("C", "agent", "clofarabine"),
    ("C", "procedure", "palliative-care"),
    ("D", "procedure", "autologous-sct"),
    ("D", "agent", "Clolar"),
    ("D", "procedure", "palliative-care"),
    ("E", "Procedure", "Palliative-Care"),
    ("F", "agent", "dasatinib"),
    ("F", "agent", "clofarabine"),
]
EXPECTED = {
    "ph-positive-tki": (["A"], ["A", "B"]),
    "allo-sct-after-second-remission": (["C"], ["C", "D"]),
    "autologous-sct": (["D"], ["A", "B", "C", "D", "E", "F"]),
    "clofarabine-outside-indication": (["D", "F"], ["C", "D", "F"]),
    "palliative-care-offered": (["C", "D", "E"], ["A", "B", "C", "D", "E", "F"]),
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[concordance.MeasureResult]]:
    folder = tmp_path_factory.mktemp("concordance")
    schema = facts_table(1, seed=0).schema  # the facts-table schema, so absent keys become NULL cells
    pq.write_table(pa.Table.from_pylist(FACTS, schema=schema), folder / "facts.parquet")
    treatments = pa.table(
        {
            "patient_id": [t[0] for t in TREATMENTS],
            "kind": [t[1] for t in TREATMENTS],
            "code": [t[2] for t in TREATMENTS],
            "date": ["2024-01-0" + str(1 + i % 9) for i in range(len(TREATMENTS))],
        }
    )
    pq.write_table(treatments, folder / "treatments.parquet")
    kb = default_engine().kb
    summary = evaluate_duckdb(folder / "facts.parquet", folder / "results.parquet", kb)
    assert summary.rejected == 0
    results = concordance.compute(
        folder / "results.parquet", folder / "treatments.parquet", kb, patients_csv=folder / "measure_patients.csv"
    )
    concordance.write_csv(results, folder / "measures.csv")
    return folder, results


def test_measures_match_the_hand_checked_cohort(measured: Any) -> None:
    _, results = measured
    got = {r.measure.id: (r.numerator_ids, r.denominator_ids) for r in results}
    assert got == EXPECTED
    for r in results:
        assert (r.numerator, r.denominator) == (len(EXPECTED[r.measure.id][0]), len(EXPECTED[r.measure.id][1]))


def test_measures_csv_and_patient_ids_csv_hold_the_same_numbers(measured: Any) -> None:
    folder, _ = measured
    with open(folder / "measures.csv", newline="", encoding="utf-8") as handle:
        counts = {r["measure_id"]: (int(r["numerator"]), int(r["denominator"])) for r in csv.DictReader(handle)}
    assert counts == {k: (len(n), len(d)) for k, (n, d) in EXPECTED.items()}
    with open(folder / "measure_patients.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for measure_id, (numerator, denominator) in EXPECTED.items():
        mine = [r for r in rows if r["measure_id"] == measure_id]
        assert sorted(r["patient_id"] for r in mine) == denominator
        assert sorted(r["patient_id"] for r in mine if r["in_numerator"] == "true") == numerator


def test_report_is_self_contained(measured: Any) -> None:
    _, results = measured
    html = report.render(results, patients=6, kb_version="test")
    assert "<svg" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report must not load anything remote"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_report_opens_in_headless_chromium_with_the_hand_checked_numbers(measured: Any, tmp_path: Path) -> None:
    folder, results = measured
    page = report.write(results, folder / "report.html", patients=6, kb_version=default_engine().kb.version)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "cohort-report.png"
    shot.unlink(missing_ok=True)
    common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(
        [*common, "--window-size=1100,1500", f"--screenshot={shot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    for measure_id, (numerator, denominator) in EXPECTED.items():
        row = re.search(rf'<tr id="row-{measure_id}">(.*?)</tr>', dom, re.S)
        assert row, f"no table row for {measure_id} in the rendered page"
        cells = dict(re.findall(r'data-field="(\w+)">([^<]*)<', row.group(1)))
        assert (int(cells["numerator"]), int(cells["denominator"])) == (len(numerator), len(denominator))
        assert cells["rate"] == f"{100 * len(numerator) / len(denominator):.1f}%"
