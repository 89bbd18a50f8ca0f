"""One `Settings` object read once at the edge: its parsing, its reach, and its documentation."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from allpath.api import create_app
from allpath.cli import app as cli_app
from allpath.settings import (
    CdsSection,
    DatabaseSettings,
    HttpSettings,
    KnowledgeSettings,
    Settings,
    SettingsError,
    variables,
)

ROOT = Path(__file__).resolve().parents[1]
CORE = ("facts", "knowledge", "rules", "engine", "course", "explain", "plan")


def test_unset_and_blank_variables_mean_the_embedded_defaults() -> None:
    blank = {v.name: " " for v in variables()}
    for settings in (Settings.from_env({}), Settings.from_env(blank)):
        assert dataclasses.replace(settings, auth=dataclasses.replace(settings.auth, secret_key="k")) == Settings(
            auth=dataclasses.replace(Settings().auth, secret_key="k")
        )


def test_each_variable_lands_in_its_section() -> None:
    settings = Settings.from_env(
        {
            "ALLPATH_DATABASE_URL": "sqlite:///elsewhere.db",
            "ALLPATH_SQLITE_SYNCHRONOUS": "normal",
            "ALLPATH_MIGRATE_ON_START": "0",
            "ALLPATH_SECRET_KEY": "from-the-environment",
            "ALLPATH_COOKIE_SECURE": "auto",
            "ALLPATH_LOGIN_WINDOW_SECONDS": "60",
            "ALLPATH_MAX_BODY_BYTES": "4096",
            "ALLPATH_CDS_ALLOWED_ISSUERS": " https://a.example.org , ,https://b.example.org",
            "ALLPATH_CDS_INSECURE_DEV": "yes",
            "ALLPATH_CDS_FHIR_TIMEOUT": "2.5",
            "ALLPATH_LONG_REMISSION_MONTHS": "36",
        }
    )
    assert settings.database == DatabaseSettings(
        url="sqlite:///elsewhere.db", sqlite_synchronous="NORMAL", migrate_on_start=False
    )
    assert (settings.auth.secret_key, settings.auth.cookie_secure, settings.auth.login_window_seconds) == (
        "from-the-environment",
        None,
        60,
    )
    assert settings.http == HttpSettings(max_body_bytes=4096)
    assert settings.cds.allowed_issuers == ("https://a.example.org", "https://b.example.org")
    assert (settings.cds.insecure_dev, settings.cds.fhir_timeout_seconds) == (True, 2.5)
    assert settings.knowledge.parameters() == {"long_remission_months": 36.0}


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ALLPATH_TOKEN_TTL_SECONDS", "half an hour", "must be a whole number"),
        ("ALLPATH_LOGIN_MAX_FAILURES", "0", "must be at least 1"),
        ("ALLPATH_MAX_HEADER_BYTES", "100", "must be at least 1024"),
        ("ALLPATH_SQLITE_SYNCHRONOUS", "sometimes", "must be one of OFF, NORMAL, FULL, EXTRA"),
        ("ALLPATH_MIGRATE_ON_START", "maybe", "must be 1 or 0 (true/false, yes/no, on/off)"),
        ("ALLPATH_COOKIE_SECURE", "perhaps", "must be 1 or 0 (true/false, yes/no, on/off)"),
        ("ALLPATH_CDS_FHIR_TIMEOUT", "0", "must be more than 0"),
        ("ALLPATH_LONG_REMISSION_MONTHS", "three years", "must be a number"),
        ("ALLPATH_LONG_REMISSION_MONTHS", "-1", "must be at least 0"),
        ("ALLPATH_LONG_REMISSION_MONTHS", "nan", "must be a finite number"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value) == f"{name}: {problem}, got {value!r}"


def test_a_section_reads_only_its_own_variables() -> None:
    # `allpath recommend` reads the knowledge section alone: a bad service variable must not stop it.
    assert KnowledgeSettings.from_env({"ALLPATH_LOGIN_LOCK_SECONDS": "soon"}) == KnowledgeSettings()


FACTS = {
    "age_years": 40, "disease_status": "relapsed", "remission_count": 1, "relapse_count": 1,
    "remission_duration_months": 20,
}  # fmt: skip


def _recommendation_ids(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)["recommendations"]]


def test_cli_passes_the_threshold_from_the_environment_and_the_option_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("ALLPATH_LONG_REMISSION_MONTHS", "24")
    strict = _recommendation_ids(runner.invoke(cli_app, ["recommend", "-"], input=json.dumps(FACTS)))
    assert "reinduction-alternative-agents" in strict
    option = ["recommend", "-", "--long-remission-months", "18"]
    assert "reinduction-original-regimen" in _recommendation_ids(
        runner.invoke(cli_app, option, input=json.dumps(FACTS))
    )


def test_cli_refuses_a_bad_threshold_with_exit_2_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLPATH_LONG_REMISSION_MONTHS", "three years")
    result = CliRunner().invoke(cli_app, ["recommend", "-"], input=json.dumps(FACTS))
    assert result.exit_code == 2
    assert "ALLPATH_LONG_REMISSION_MONTHS: must be a number" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("extra", [[], ["--cds-only"]])
def test_serve_refuses_to_start_on_a_bad_value_with_exit_2(monkeypatch: pytest.MonkeyPatch, extra: list[str]) -> None:
    import uvicorn

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(a))
    monkeypatch.setenv("ALLPATH_CDS_INSECURE_DEV", "1")
    monkeypatch.setenv("ALLPATH_LOGIN_LOCK_SECONDS", "soon")
    result = CliRunner().invoke(cli_app, ["serve", "--port", "18998", *extra])
    assert result.exit_code == 2
    assert "ALLPATH_LOGIN_LOCK_SECONDS: must be a whole number" in result.stderr
    assert not started and "Traceback" not in result.output


def test_create_app_takes_the_threshold_and_cds_from_settings_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLPATH_LONG_REMISSION_MONTHS", "99")
    monkeypatch.setenv("ALLPATH_CDS_INSECURE_DEV", "1")
    url = f"sqlite:///{tmp_path / 't.db'}"
    from_env = create_app(database_url=url)
    given = create_app(
        database_url=url,
        settings=Settings(knowledge=KnowledgeSettings(long_remission_months=36), cds=CdsSection(insecure_dev=True)),
    )
    try:
        assert from_env.state.allpath.kb.parameters["long_remission_months"].value == 18
        assert given.state.allpath.kb.parameters["long_remission_months"].value == 36
        with TestClient(from_env) as client:
            assert client.get("/cds-services").status_code == 404
        with TestClient(given) as client:
            assert client.get("/cds-services").status_code == 200
    finally:
        from_env.state.allpath.close()
        given.state.allpath.close()


def test_the_core_never_reads_the_environment() -> None:
    readers = re.compile(r"\bos\.environ\b|\bgetenv\b|\benviron\b")
    offenders = []
    for name in CORE:
        package = ROOT / "src" / "allpath" / name
        files = [*package.rglob("*.py")] if package.is_dir() else [package.with_suffix(".py")]
        assert files and all(f.is_file() for f in files), name
        offenders += [
            f"{f.relative_to(ROOT)}:{i}"
            for f in files
            for i, line in enumerate(f.read_text().splitlines(), 1)
            if readers.search(line)
        ]
    assert offenders == []


def _documented() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and re.fullmatch(r"`ALLPATH_[A-Z_]+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[3], cells[4])
    return rows


def test_configuration_doc_lists_exactly_the_variables_settings_know_in_their_sections() -> None:
    known = {v.name: v.section for v in variables()}
    documented = _documented()
    assert set(documented) == set(known)
    assert {name: section for name, (section, _) in documented.items()} == known


def test_every_variable_is_documented_with_what_reads_it() -> None:
    documented = _documented()
    assert {v.name: v.reads for v in variables()} == {name: reads for name, (_, reads) in documented.items()}
