"""`allpath cohort ...` from the command line: bad rows reported and set aside, bad tables exit 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from allpath.cli import app

from .helpers import read_results

runner = CliRunner()


def test_synth_evaluate_and_report_end_to_end(tmp_path: Path) -> None:
    made = runner.invoke(app, ["cohort", "synth", "300", "--seed", "4", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    done = runner.invoke(
        app, ["cohort", "evaluate", str(tmp_path / "facts.parquet"), "--out", str(tmp_path / "results.parquet")]
    )
    assert done.exit_code == 0, done.output
    assert "300 rows: 300 evaluated, 0 rejected" in done.output
    assert len(read_results(tmp_path / "results.parquet")) == 300
    reported = runner.invoke(
        app,
        ["cohort", "report", str(tmp_path / "facts.parquet"), str(tmp_path / "treatments.parquet"),
         "--out", str(tmp_path / "report"), "--results", str(tmp_path / "results.parquet")],
    )  # fmt: skip
    assert reported.exit_code == 0, reported.output
    assert "autologous-sct: " in reported.output
    assert (tmp_path / "report" / "report.html").is_file()
    assert (tmp_path / "report" / "measures.csv").is_file()


def test_bad_rows_are_listed_and_the_run_goes_on(tmp_path: Path) -> None:
    source = tmp_path / "facts.csv"
    source.write_text(
        "patient_id,age_years,disease_status\nA,3,newly_diagnosed\nB,-4,newly_diagnosed\nC,70,in_remission\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["cohort", "evaluate", str(source), "--out", str(tmp_path / "out.parquet")])
    assert result.exit_code == 0, result.output
    assert "row 2: age_years: must be >= 0" in result.output
    assert "row 3: remission_count: must be > relapse_count (0) when disease_status is in_remission" in result.output
    assert "3 rows: 1 evaluated, 2 rejected" in result.output
    assert (tmp_path / "out.rejects.csv").is_file()


def test_a_table_without_required_columns_exits_2(tmp_path: Path) -> None:
    source = tmp_path / "facts.csv"
    source.write_text("patient_id,age\nA,3\n", encoding="utf-8")
    result = runner.invoke(app, ["cohort", "evaluate", str(source), "--out", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2
    assert "age: is not a PatientFacts field or patient_id" in result.output
    assert "disease_status: column is required" in result.output


def test_a_missing_input_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cohort", "evaluate", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_a_file_that_is_not_parquet_exits_2_naming_the_source_and_leaves_no_results(tmp_path: Path) -> None:
    source = tmp_path / "facts.parquet"
    source.write_text("patient_id,age_years\nP1,4\n", encoding="utf-8")  # CSV text behind a .parquet name
    out = tmp_path / "results.parquet"
    done = runner.invoke(app, ["cohort", "evaluate", str(source), "--out", str(out)])
    assert done.exit_code == 2, done.output
    assert "SOURCE: cannot be read:" in done.stderr
    assert "Traceback" not in done.output
    assert not out.exists()


def test_a_treatments_table_without_the_kind_column_exits_2_with_the_problem(tmp_path: Path) -> None:
    made = runner.invoke(app, ["cohort", "synth", "50", "--seed", "5", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    treatments = tmp_path / "treatments.csv"
    treatments.write_text("patient_id,code,date\nP1,imatinib,2024-01-01\n", encoding="utf-8")
    done = runner.invoke(
        app, ["cohort", "report", str(tmp_path / "facts.parquet"), str(treatments), "--out", str(tmp_path / "r")]
    )
    assert done.exit_code == 2, done.output
    assert "TABLES: results or treatments cannot be used:" in done.stderr
    assert '"kind"' in done.stderr
    assert "Traceback" not in done.output
