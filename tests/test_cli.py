"""The command line: plans out, bad input refused with exit status 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from allpath.cli import app
from tests.factsgen import invalid_facts_dicts

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
runner = CliRunner()


def run_cli(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def test_version_option_prints_the_package_version() -> None:
    from allpath import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"allpath {__version__}"


def test_recommend_json_from_file() -> None:
    result = run_cli("recommend", str(ROOT / "examples" / "newly-diagnosed-child-b-cell.json"))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["recommendations"][0]["id"] == "induction-chemotherapy"
    assert plan["knowledge"]["sources"][0]["approved"] == "2017-05"


def test_recommend_text_from_stdin_ends_with_sources() -> None:
    facts = {"age_years": 40, "disease_status": "refractory", "lineage": "B", "prior_regimen_count": 1}
    result = run_cli("recommend", "-", "--format", "text", stdin=json.dumps(facts))
    assert result.exit_code == 0
    text = result.stdout
    assert "A second opinion" in text
    assert text.index("SOURCES") > text.index("WHAT APPLIES NOW")
    assert "Cancer.Net" in text.split("SOURCES")[1]


def test_threshold_option_moves_a_relapse_from_long_to_short() -> None:
    facts = {
        "age_years": 40, "disease_status": "relapsed", "remission_count": 1, "relapse_count": 1,
        "remission_duration_months": 20,
    }  # fmt: skip
    default = json.loads(run_cli("recommend", "-", stdin=json.dumps(facts)).stdout)
    strict = json.loads(run_cli("recommend", "-", "--long-remission-months", "24", stdin=json.dumps(facts)).stdout)
    assert "reinduction-original-regimen" in [r["id"] for r in default["recommendations"]]
    assert "reinduction-alternative-agents" in [r["id"] for r in strict["recommendations"]]


def test_bad_field_exits_2_naming_it() -> None:
    result = run_cli("recommend", "-", stdin='{"age_years": -1, "disease_status": "newly_diagnosed"}')
    assert result.exit_code == 2
    assert result.stderr.strip() == "age_years: must be >= 0"


def test_malformed_json_exits_2() -> None:
    result = run_cli("recommend", "-", stdin='{"age_years": ')
    assert result.exit_code == 2
    assert "malformed JSON" in result.stderr


def test_missing_file_exits_2() -> None:
    result = run_cli("recommend", "/nonexistent/facts.json")
    assert result.exit_code == 2
    assert "no such file" in result.stderr


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(invalid_facts_dicts(), st.sampled_from(["", "[]", "null", "{", '"x"', "{}"])))
def test_any_invalid_input_exits_2_without_a_traceback(data: Any) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    result = run_cli("recommend", "-", stdin=text)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and all(": " in line for line in lines)


def test_real_process_exit_status_and_stderr() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "allpath.cli", "recommend", "-"],
        input='{"age_years": 5, "disease_status": "relapsed"}',
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 2
    assert process.stderr.strip() == "relapse_count: must be >= 1 when disease_status is relapsed"
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize("command", ["agents", "phases", "sources", "rules"])
def test_kb_listings_as_json(command: str) -> None:
    result = run_cli("kb", command, "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert rows


def test_kb_agents_lists_every_agent_with_corrected_brand() -> None:
    rows = json.loads(run_cli("kb", "agents", "--format", "json").stdout)
    ponatinib = next(r for r in rows if r["name"] == "ponatinib")
    assert ponatinib["brand_names"] == "Iclusig"
    assert len(rows) >= 20


def test_schema_command_prints_both_schemas() -> None:
    schemas = json.loads(run_cli("schema").stdout)
    assert schemas["facts"]["additionalProperties"] is False
    assert "recommendations" in schemas["plan"]["properties"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_gives_a_cited_text_plan(path: Path) -> None:
    result = run_cli("recommend", str(path), "--format", "text")
    assert result.exit_code == 0
    assert "SOURCES" in result.stdout and "[1]" in result.stdout


def test_at_least_eight_examples_ship() -> None:
    assert len(EXAMPLES) >= 8


def test_a_database_that_cannot_be_opened_exits_2_without_the_password(tmp_path: Path) -> None:
    closed_port = "postgresql://allpath:not-in-the-output@127.0.0.1:1/allpath"
    for url in (f"sqlite:///{tmp_path}/missing-folder/allpath.db", closed_port):
        for command in (["db", "upgrade"], ["db", "seed-demo"]):
            result = runner.invoke(app, [*command, "--database-url", url])
            assert result.exit_code == 2, result.output
            assert "database_url: cannot open the database:" in result.stderr
            assert "not-in-the-output" not in result.output
            assert "Traceback" not in result.output


def test_cohort_synth_into_a_folder_that_cannot_be_made_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["cohort", "synth", "5", "--out", str(blocker / "cohort")])
    assert result.exit_code == 2, result.output
    assert f"--out: cannot write to {blocker / 'cohort'}" in result.stderr
    assert "Traceback" not in result.output
